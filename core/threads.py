"""A platform's own comment threads under gallery posts (a Telegram channel's discussion group): the
thread is tied to the post once, when the platform shows the gallery message in the group, and every
message written in it afterwards is a comment on that post."""

from __future__ import annotations

import json

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.db import insert_ignore
from core.messenger import MessageRef
from core.models import CommentThread, Delivery


async def post_of_gallery_message(
    session: AsyncSession, platform: str, gallery_chats: list[str], message_id: str
) -> int | None:
    """The post a gallery message shows; `gallery_chats` are the names the channel may go by (its
    numeric id, @name), since the gallery setting may use either."""
    refs = [MessageRef(platform, chat, message_id).encode() for chat in gallery_chats]
    payload = await session.scalar(
        select(Delivery.payload).where(Delivery.kind == "post", Delivery.sent_ref.in_(refs)).limit(1)
    )
    if payload is None:
        return None
    post = json.loads(payload).get("post")
    return post if isinstance(post, int) else None


async def link(session: AsyncSession, platform: str, chat_id: str, thread_id: str, post_id: int) -> None:
    await session.execute(
        insert_ignore(session, CommentThread, platform=platform, chat_id=chat_id, thread_id=thread_id, post_id=post_id)
    )


async def post_of_thread(session: AsyncSession, platform: str, chat_id: str, thread_id: str) -> int | None:
    return await session.scalar(
        select(CommentThread.post_id).where(
            CommentThread.platform == platform, CommentThread.chat_id == chat_id, CommentThread.thread_id == thread_id
        )
    )
