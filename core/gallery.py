"""Gallery channels: every public post is sent to each registered gallery through the outbox."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from core import cards, outbox
from core.gen.media import MediaStore
from core.messenger import MessageRef
from core.models import Delivery, Post
from core.outbox import Outgoing


async def publish(session: AsyncSession, galleries: list[tuple[str, str]], post: Post) -> None:
    for platform, chat_id in galleries:
        await outbox.add(
            session,
            key=f"gallery:{platform}:{chat_id}:{post.id}",
            platform=platform,
            chat_id=chat_id,
            kind="post",
            payload={"post": post.id},
        )


class PostRenderer:
    """Delivery payload {"post": id}: the post's card as it is now; nothing if it is gone or private."""

    def __init__(self, media: MediaStore) -> None:
        self.media = media

    async def render(self, session: AsyncSession, delivery: Delivery, payload: dict[str, Any]) -> Outgoing | None:
        post = await session.get(Post, payload["post"])
        if post is None or not post.is_public:
            return None
        [view] = await cards.views(session, [post])
        return Outgoing(cards.card(view, self.media))

    async def sent(self, session: AsyncSession, delivery: Delivery, payload: dict[str, Any], ref: MessageRef) -> None:
        return None
