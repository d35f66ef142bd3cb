"""/private on|off: a private profile's posts reach only the followers it approved; following it
is a request with approve / decline buttons."""

from __future__ import annotations

import json

from core.feed import notifications
from core.models import utcnow
from tests.fakes.platform import deliveries
from tests.safety_support import in_digest, in_feed, in_top, on_profile, post_ids
from tests.support import Chat


async def test_a_private_profile_keeps_its_posts_to_approved_followers(chat: Chat) -> None:
    core = chat.core
    await chat.say("friend", "/start")
    old = await chat.post("shy", "an old fox")
    assert "Your profile is private" in await chat.text("shy", "/private on")
    new = await chat.post("shy", "a new fox")
    for post_id in (old, new):
        assert post_id not in await in_top(chat, "stranger")
        assert await chat.text("stranger", f"/post {post_id}") == f"There is no post #{post_id}."
        assert post_id not in await in_digest(core, "stranger")
    assert "This profile is private" in await on_profile(chat, "stranger", "shy")
    assert f"#{new}" in await on_profile(chat, "shy", "shy")  # the owner sees everything

    asked = await chat.text("friend", "/follow shy")
    assert "private" in asked and "they decide" in asked
    assert await chat.text("friend", "/following") == "You don't follow anyone yet. Try /follow @handle."
    [state] = await chat.say("shy", "/private")
    assert "@friend" in state.text
    assert [b.action for b in state.buttons[0]] == ["approve friend", "decline friend"]
    [approved] = await chat.press("shy", "approve friend")
    assert "@friend now follows you" in approved.text

    assert set(await in_feed(chat, "friend")) == {old, new}
    assert post_ids(await chat.say("friend", f"/post {new}")) == [new]
    assert new in await in_digest(core, "friend")
    assert f"#{new}" in await on_profile(chat, "friend", "shy")
    assert new not in await in_top(chat, "friend")  # /top stays a public place

    assert "Your profile is public" in await chat.text("shy", "/private off")
    assert new in await in_top(chat, "stranger")


async def test_a_follow_request_is_notified_with_buttons_and_can_be_declined(chat: Chat) -> None:
    core = chat.core
    await chat.say("shy", "/private on")
    await chat.say("pushy", "/follow @shy")
    await chat.say("pushy", "/follow @shy")  # asked twice: one request
    await notifications.batch_pass(core.sessions, core.settings.model_copy(update={"quiet_hours": ""}), utcnow())
    [told] = [json.loads(d.payload) for d in await deliveries(core, "text") if d.chat_id == "chat-shy"]
    assert "@pushy asked to follow you" in told["text"]
    assert [action for row in told["buttons"] for _, action in row] == ["approve pushy", "decline pushy"]

    [declined] = await chat.press("shy", "decline pushy")
    assert "declined" in declined.text
    assert "has not asked" in await chat.text("shy", "/approve pushy")  # the request is gone
    assert "@pushy" not in await chat.text("shy", "/followers")
    assert await chat.text("stranger", "/approve pushy") == "@pushy has not asked to follow you."


async def test_going_public_lets_everyone_who_asked_follow(chat: Chat) -> None:
    await chat.say("shy", "/private on")
    await chat.say("fan", "/follow shy")
    await chat.say("shy", "/private off")
    assert "@shy" in await chat.text("fan", "/following")
