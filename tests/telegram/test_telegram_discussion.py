"""Comments written under a gallery post in the channel's linked discussion group become comments on
that post in the core: the automatic forward's forward_origin names the channel message, which names
the post; the thread is keyed on message_thread_id."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from core.app import Core
from core.config import Settings
from core.models import CommentThread, GenerationJob
from tests.fakes.telegram_api import ChatInfo, FakeTelegramAPI, User, start_bot

ALICE = User(111, "Alice", "alice")
BOB = User(222, "Bob", "bob")
CAROL = User(333, "Carol", "carol")


async def jobs(core: Core) -> list[GenerationJob]:
    async with core.sessions() as session:
        return list(await session.scalars(select(GenerationJob).where(GenerationJob.prompt == "not a comment")))


async def comments_text(api: FakeTelegramAPI, user: User, post_id: str) -> str:
    mark = len(api.calls)
    api.say(user, f"/comments {post_id}")
    return str((await api.wait_for("sendMessage", lambda c: c.chat_id == str(user.id), after=mark)).params["text"])


async def test_a_comment_in_the_discussion_group_is_a_comment_on_the_gallery_post(
    core: Core, settings: Settings, api: FakeTelegramAPI
) -> None:
    channel = ChatInfo(-100777, "channel", "Gallery")
    group = ChatInfo(-100888, "supergroup", "Gallery chat")
    api.chats[channel.id] = channel
    running = await start_bot(core, settings, api, telegram_gallery_chat_id=str(channel.id))
    try:
        mark = len(api.calls)
        api.say(ALICE, "/imagine a harbour in the fog")
        posted = await api.wait_for("sendPhoto", lambda c: c.chat_id == str(channel.id), after=mark)
        post_id = posted.result["caption"].split()[0].lstrip("#")
        root = api.forward_to_discussion(posted.result, group)
        async with asyncio.timeout(10):
            while True:  # the bot ties the thread to the post when it sees the forward
                async with core.sessions() as session:
                    if await session.get(CommentThread, ("telegram", str(group.id), str(root["message_id"]))):
                        break
                await asyncio.sleep(0.05)
        api.comment_in_thread(BOB, group, root, "what a mood")
        api.comment_in_thread(CAROL, group, root, "/imagine not a comment")  # commands are not comments
        async with asyncio.timeout(10):
            while "what a mood" not in (shown := await comments_text(api, ALICE, post_id)):  # noqa: ASYNC110
                await asyncio.sleep(0.1)
        assert [line.split(" ", 1)[1] for line in shown.splitlines()[1:]] == ["@bob: what a mood"]
        # A comment is taken quietly; a command there is answered as one, and the gallery post it sits
        # under (every message of a thread replies to it) is not taken for a picture to start from.
        await api.wait_for("sendMessage", lambda c: c.chat_id == str(group.id))
        answered = [c.params["text"] for c in api.calls_of("sendMessage", group.id)]
        assert answered and all("not a comment" in text for text in answered)
        [job] = await jobs(core)
        assert job.source_kind is None and job.prompt == "not a comment"
        other = ChatInfo(-100999, "supergroup", "Some other group")
        api.comment_in_thread(BOB, other, {"message_id": 5, "chat": other.json()}, "unrelated chatter")
        await asyncio.sleep(0.3)
        assert "unrelated chatter" not in await comments_text(api, ALICE, post_id)
    finally:
        await running.close()
