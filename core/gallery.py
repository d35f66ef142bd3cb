"""Gallery channels: every public post is sent to each registered gallery through the outbox."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core import cards, outbox
from core.config import Settings, parse_clock
from core.feed.digest import WINDOW, trending
from core.feed.localtime import digest_due
from core.gen.media import MediaStore
from core.messenger import MessageRef
from core.models import Delivery, Post, utcnow
from core.outbox import Outgoing
from core.replies import Reply
from core.visibility import VISIBLE

REMOVED = "This post was removed."


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


async def _sent_messages(
    session: AsyncSession, galleries: list[tuple[str, str]], post_id: int
) -> list[tuple[int, str, str, str]]:
    """(delivery id, platform, chat id, message ref) of each gallery message that shows the post."""
    keys = [f"gallery:{platform}:{chat_id}:{post_id}" for platform, chat_id in galleries]
    if not keys:
        return []
    rows = await session.execute(
        select(Delivery.id, Delivery.platform, Delivery.chat_id, Delivery.sent_ref).where(
            Delivery.key.in_(keys), Delivery.status == "sent", Delivery.sent_ref.is_not(None)
        )
    )
    return [(delivery_id, platform, chat_id, ref) for delivery_id, platform, chat_id, ref in rows if ref is not None]


async def refresh_later(session: AsyncSession, galleries: list[tuple[str, str]], post_id: int, every: float) -> None:
    """A like changed the post's count: bring its gallery messages up to date, at most once per
    `every` seconds each (likes within that window share one edit, which shows the count then)."""
    sent = await _sent_messages(session, galleries, post_id)
    window = int(utcnow().timestamp() // every)
    due = datetime.fromtimestamp((window + 1) * every, UTC)
    for delivery_id, platform, chat_id, ref in sent:
        await outbox.add(
            session,
            key=f"galleryedit:{delivery_id}:{window}",
            platform=platform,
            chat_id=chat_id,
            kind="post",
            payload={"post": post_id, "ref": ref},
            not_before=due,
        )


async def withdraw(session: AsyncSession, galleries: list[tuple[str, str]], post_id: int) -> None:
    """The post left the public places: its gallery messages are deleted where the platform
    allows, and elsewhere edited into a line saying so."""
    sent = await _sent_messages(session, galleries, post_id)
    for delivery_id, platform, chat_id, ref in sent:
        await outbox.add(
            session,
            key=f"gallerygone:{delivery_id}",
            platform=platform,
            chat_id=chat_id,
            kind="post",
            payload={"post": post_id, "ref": ref, "gone": True},
        )


def _listed(post: Post | None) -> bool:
    return post is not None and post.is_public and post.status == VISIBLE and not post.author_private


class PostRenderer:
    """Delivery payload {"post": id}, optionally with "ref": the post's card as it is now, sent, or
    edited into that message; nothing if the post is gone or private."""

    def __init__(self, media: MediaStore) -> None:
        self.media = media

    async def render(self, session: AsyncSession, delivery: Delivery, payload: dict[str, Any]) -> Outgoing | None:
        post = await session.get(Post, payload["post"])
        if payload.get("gone"):
            if _listed(post):  # restored before the removal went out
                return None
            return Outgoing(Reply(text=REMOVED), delete=MessageRef.decode(payload["ref"]))
        if post is None or not _listed(post):
            return None
        [view] = await cards.views(session, [post])
        if "ref" in payload:
            return Outgoing(cards.card(view, self.media, edit=True), edit=MessageRef.decode(payload["ref"]))
        return Outgoing(cards.card(view, self.media))

    async def sent(self, session: AsyncSession, delivery: Delivery, payload: dict[str, Any], ref: MessageRef) -> None:
        return None


async def best_of_pass(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, galleries: list[tuple[str, str]], now: datetime
) -> int:
    """Once a day, at GALLERY_BEST_OF_TIME in the default time zone, each gallery gets the day's best."""
    due, day = digest_due(now, ZoneInfo(settings.default_timezone), parse_clock(settings.gallery_best_of_time))
    if not due or not galleries:
        return 0
    async with sessions() as session:
        best = [post_id for post_id, _ in await trending(session, now - WINDOW, settings.digest_size)]
        if not best:
            return 0
        for platform, chat_id in galleries:
            await outbox.add(
                session,
                key=f"bestof:{platform}:{chat_id}:{day.isoformat()}",
                platform=platform,
                chat_id=chat_id,
                kind="bestof",
                payload={"posts": best, "date": day.isoformat()},
            )
        await session.commit()
    return len(galleries)
