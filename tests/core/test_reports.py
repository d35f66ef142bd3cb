"""Reports: a button on every card and /report; one per person per post; the threshold of
different people puts a post under review; admins are told, in a batch, with keep / remove."""

from __future__ import annotations

import json

from core.feed import notifications
from core.models import utcnow
from tests.fakes.platform import deliveries
from tests.safety_support import audit_actions, in_feed, in_top, post_ids, post_row
from tests.support import Chat

ADMINS_ONLY = "Only admins can do that."


async def test_every_card_has_a_report_button_and_pressing_it_reports(chat: Chat) -> None:
    post_id = await chat.post("alice")
    [card] = await chat.say("bob", f"/post {post_id}")
    actions = [b.action for row in card.buttons for b in row]
    assert f"report {post_id}" in actions
    [pressed] = await chat.press("bob", f"report {post_id}")
    assert pressed.notice and "an admin will look" in pressed.text


async def test_the_threshold_counts_different_people_and_hides_until_an_admin_keeps_it(chat: Chat) -> None:
    core = chat.core
    assert core.settings.report_hide_threshold == 3
    await chat.say("alice", "/start")
    await chat.say("reader", "/follow alice")
    post_id = await chat.post("alice", "a contested fox")
    assert "an admin will look" in await chat.text("bob", f"/report {post_id} offensive")
    assert "already reported" in await chat.text("bob", f"/report {post_id} really offensive")
    await chat.press("bob", f"report {post_id}")
    await chat.say("carol", f"/report {post_id} spam")
    row = await post_row(core, post_id)
    assert row is not None and row.status == "visible"  # two people, however many reports
    assert "can't report your own" in await chat.text("alice", f"/report {post_id}")

    await chat.say("dan", f"/report {post_id}")
    row = await post_row(core, post_id)
    assert row is not None and row.status == "review"
    assert post_id not in await in_feed(chat, "reader") and post_id not in await in_top(chat, "reader")
    assert "There is no post" in await chat.text("reader", f"/post {post_id}")
    assert "Under review" in await chat.text("alice", f"/post {post_id}")

    [listed] = await chat.say("admin", "/reports")
    assert "3 reports" in listed.text and "offensive; spam" in listed.text and "@alice" in listed.text
    assert [b.action for b in listed.buttons[0]] == [f"keep {post_id}", f"remove {post_id}"]
    [kept] = await chat.press("admin", f"keep {post_id}")
    assert "Kept" in kept.text
    assert post_id in await in_feed(chat, "reader")
    assert await chat.text("admin", "/reports") == "No open reports."
    assert await audit_actions(core) == [("keep", post_id)]


async def test_admins_are_told_of_a_newly_reported_post_once_with_keep_and_remove(chat: Chat) -> None:
    core = chat.core
    await chat.say("admin", "/start")  # gives the admin a chat to be told in
    post_id = await chat.post("alice")
    await chat.say("bob", f"/report {post_id} spam")
    await chat.say("carol", f"/report {post_id}")  # the same post again: no second alert
    await notifications.batch_pass(core.sessions, core.settings.model_copy(update={"quiet_hours": ""}), utcnow())
    told = [d for d in await deliveries(core, "text") if d.chat_id == "chat-admin"]
    assert len(told) == 1
    payload = json.loads(told[0].payload)
    assert f"reported #{post_id}" in payload["text"]
    actions = [action for row in payload["buttons"] for _, action in row]
    assert f"keep {post_id}" in actions and f"remove {post_id}" in actions

    [removed] = await chat.press("admin", f"remove {post_id}")
    assert "Removed" in removed.text
    assert "was deleted" in await chat.text("bob", f"/post {post_id}")
    assert "is back" in await chat.text("admin", f"/restore {post_id}")
    assert post_ids(await chat.say("bob", f"/post {post_id}")) == [post_id]
    assert [a for a, _ in await audit_actions(core)] == ["remove", "restore"]


async def test_report_decisions_are_refused_to_non_admins_typed_or_pressed(chat: Chat) -> None:
    post_id = await chat.post("alice")
    await chat.say("bob", f"/report {post_id}")
    assert await chat.text("bob", "/reports") == ADMINS_ONLY
    for action in (f"keep {post_id}", f"remove {post_id}", "reports"):
        [pressed] = await chat.press("bob", action)
        assert pressed.text == ADMINS_ONLY and pressed.error, action
        assert await chat.text("bob", f"/{action}") == ADMINS_ONLY
    row = await post_row(chat.core, post_id)
    assert row is not None and row.status == "visible"
    assert await audit_actions(chat.core) == []


async def test_a_banned_person_cannot_report(chat: Chat) -> None:
    post_id = await chat.post("alice")
    await chat.say("bob", "/start")
    assert "banned until" in await chat.text("admin", "/ban bob 1d")
    assert "banned until" in await chat.text("bob", f"/report {post_id}")
