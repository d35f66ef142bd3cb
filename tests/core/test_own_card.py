"""A card shown to its own author alone (their own chat) offers no "Follow" of themselves; a card others
see too (a group, a channel, the gallery) keeps it for them."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from core import app as core_app
from core.actor import Actor
from core.messenger import MessageRef
from core.replies import Reply
from tests.fakes.platform import FakeMessenger
from tests.support import Chat

GROUP = "group-1"


def in_group(name: str) -> Actor:
    return Actor("console", name, chat_id=GROUP, username=name, display_name=name.title(), private=False)


def actions(reply: Reply) -> list[str]:
    return [b.action for row in reply.buttons for b in row]


def follows(reply: Reply) -> list[str]:
    return [a for a in actions(reply) if a.startswith("follow ")]


async def drained(chat: Chat) -> None:
    chat.core.outbox.wake()
    async with asyncio.timeout(15):
        await chat.core.drain()


async def test_post_shows_your_own_card_without_follow_and_someone_elses_with_it(chat: Chat) -> None:
    mine = await chat.post("alice", "my fox")
    theirs = await chat.post("bob", "his fox")
    [own] = await chat.say("alice", f"/post {mine}")
    [other] = await chat.say("alice", f"/post {theirs}")
    assert follows(own) == [] and follows(other) == ["follow bob"]
    # The row keeps the rest, in order.
    assert [[b.action for b in row] for row in own.buttons][1] == [f"comment {mine}", f"report {mine}"]
    assert [[b.action for b in row] for row in other.buttons][1] == [
        "follow bob",
        f"comment {theirs}",
        f"report {theirs}",
    ]


async def test_post_with_comments_shows_your_own_card_without_follow(chat: Chat) -> None:
    mine = await chat.post("alice", "my fox")
    await chat.say("bob", f"/comment {mine} lovely")
    own, listing = await chat.say("alice", f"/post {mine}")
    assert own.post_id == mine and follows(own) == []
    assert "lovely" in listing.text


async def test_top_and_feed_leave_out_follow_on_your_own_cards_only(chat: Chat) -> None:
    mine = await chat.post("alice", "my fox")
    theirs = await chat.post("bob", "his fox")
    top = {r.post_id: r for r in await chat.say("alice", "/top") if r.post_id is not None}
    assert follows(top[mine]) == [] and follows(top[theirs]) == ["follow bob"]
    await chat.say("bob", "/follow alice")
    [shown] = [r for r in await chat.say("bob", "/feed") if r.post_id is not None]
    assert shown.post_id == mine and follows(shown) == ["follow alice"]


async def test_a_like_on_your_own_card_edits_it_without_follow(chat: Chat) -> None:
    mine = await chat.post("alice", "my fox")
    notice, edited = await chat.press("alice", f"like {mine}")
    assert notice.notice and edited.edit and edited.post_id == mine
    assert follows(edited) == []
    _notice, bobs = await chat.press("bob", f"like {mine}")
    assert follows(bobs) == ["follow alice"]


async def test_in_a_group_your_own_card_keeps_follow_for_the_others_there(chat: Chat) -> None:
    mine = await chat.post("alice", "my fox")
    [shown] = await chat.core.handle(in_group("alice"), f"/post {mine}")
    assert follows(shown) == ["follow alice"]
    # A press edits the message everyone in the group (or channel) sees.
    _notice, edited = await chat.core.press(in_group("alice"), f"like {mine}")
    assert edited.edit and follows(edited) == ["follow alice"]


async def test_imagines_result_in_your_own_chat_has_no_follow_and_in_a_group_it_has(chat: Chat) -> None:
    messenger = FakeMessenger()
    chat.core.register_messenger(messenger)
    [alone] = await chat.say("alice", "/imagine a fox in my chat")
    [grouped] = await chat.core.handle(in_group("alice"), "/imagine a fox in the group")
    assert alone.job_id is not None and grouped.job_id is not None
    await chat.core.progress_shown(alone.job_id, MessageRef("console", "chat-alice", "7"))
    await chat.core.progress_shown(grouped.job_id, MessageRef("console", GROUP, "8"))
    await chat.finish([alone])
    await chat.finish([grouped])
    await drained(chat)
    final = {ref.message_id: reply for ref, reply in messenger.edits if reply.post_id is not None}
    assert follows(final["7"]) == []
    assert follows(final["8"]) == ["follow alice"]


async def test_a_result_sent_as_a_new_message_to_your_own_chat_has_no_follow(
    chat: Chat, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(core_app, "PROGRESS_GRACE", timedelta(0))
    messenger = FakeMessenger()
    chat.core.register_messenger(messenger)
    job = await chat.finish(await chat.say("alice", "/imagine a fox never shown in progress"))
    await drained(chat)
    [post] = [s for s in messenger.sent if s.reply.post_id == job.post_id]
    assert post.chat_id == "chat-alice" and follows(post.reply) == []


async def test_the_gallery_card_keeps_follow_for_everyone(chat: Chat) -> None:
    messenger = FakeMessenger()
    chat.core.register_messenger(messenger)
    chat.core.register_gallery("console", "gallery")
    await chat.say("alice", "/start")  # her own chat is known: the gallery still is not hers alone
    mine = await chat.post("alice", "a public fox")
    await drained(chat)
    [published] = [s.reply for s in messenger.sent if s.chat_id == "gallery"]
    assert published.post_id == mine and follows(published) == ["follow alice"]
