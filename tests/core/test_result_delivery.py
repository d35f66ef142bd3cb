"""A finished job's post reaches the person who asked, once: into their progress message, or as a new
message when no progress message was shown (the adapter died first) or it is gone."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta

import pytest

from core import app as core_app
from core.app import Core
from core.messenger import MessageGone, MessageRef
from core.replies import Reply
from tests.fakes.platform import FakeMessenger, deliveries
from tests.support import Chat

SHOWN = MessageRef("console", "chat-alice", "7")  # the progress message the adapter reports


@dataclass
class DeletedMessages(FakeMessenger):
    """Every message it is asked to edit was deleted by the person."""

    async def edit(self, ref: MessageRef, reply: Reply) -> MessageRef:
        self.edits.append((ref, reply))
        raise MessageGone("message to edit not found")


async def drained(core: Core) -> None:
    core.outbox.wake()
    async with asyncio.timeout(15):
        await core.drain()


def pictures(messenger: FakeMessenger) -> list[Reply]:
    return [s.reply for s in messenger.sent if s.reply.image is not None]


async def test_a_result_with_no_progress_message_comes_as_a_new_message_once(
    chat: Chat, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(core_app, "PROGRESS_GRACE", timedelta(0))
    messenger = FakeMessenger()
    chat.core.register_messenger(messenger)
    replies = await chat.say("alice", "/imagine a red fox in the snow")  # the adapter dies: never shown
    job = await chat.finish(replies)
    await drained(chat.core)
    [post] = pictures(messenger)
    assert post.post_id == job.post_id and messenger.sent[0].chat_id == "chat-alice"
    # The adapter's report arriving late leaves no stale "Queued" behind and no second post.
    await chat.core.progress_shown(job.id, SHOWN)
    await drained(chat.core)
    assert len(pictures(messenger)) == 1
    [(ref, retired)] = messenger.edits
    assert ref == SHOWN and retired.image is None and "another message" in retired.text


async def test_a_progress_message_reported_after_the_job_finished_becomes_the_post_and_nothing_else(
    chat: Chat,
) -> None:
    messenger = FakeMessenger()
    chat.core.register_messenger(messenger)
    replies = await chat.say("alice", "/imagine a lighthouse")
    job = await chat.finish(replies)  # done before the adapter could report its message
    await chat.core.progress_shown(job.id, SHOWN)
    await drained(chat.core)
    assert messenger.sent == []
    ref, final = messenger.edits[-1]
    assert ref == SHOWN and final.post_id == job.post_id and final.image is not None
    assert {d.key: d.status for d in await deliveries(chat.core)}[f"result:{job.id}"] == "sent"


async def test_a_result_whose_progress_message_was_deleted_comes_as_a_new_message(chat: Chat) -> None:
    messenger = DeletedMessages()
    chat.core.register_messenger(messenger)
    replies = await chat.say("alice", "/imagine a quiet harbour")
    assert replies[0].job_id is not None
    await chat.core.progress_shown(replies[0].job_id, SHOWN)
    job = await chat.finish(replies)
    await drained(chat.core)
    [post] = pictures(messenger)
    assert post.post_id == job.post_id
    assert len(messenger.sent) == 1  # the steps in between were not sent again
