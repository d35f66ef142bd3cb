"""Rendering digest and "best of the day" deliveries when they are sent: the posts as they are
now (deleted or private ones dropped), one collage, a short text and a button per post."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core import cards
from core.feed.collage import Tile, collage_file
from core.gen.media import MediaStore
from core.messenger import MessageRef
from core.models import Delivery, Post
from core.outbox import Outgoing, reachable
from core.replies import Button, Image, Reply

BUTTONS_PER_ROW = 3


async def visible_views(session: AsyncSession, post_ids: list[int]) -> list[cards.PostView]:
    posts = {p.id: p for p in await session.scalars(select(Post).where(Post.id.in_(post_ids)))}
    ordered = [posts[i] for i in post_ids if i in posts and posts[i].is_public]
    return await cards.views(session, ordered)


async def digest_reply(media: MediaStore, title: str, views: list[cards.PostView]) -> Reply:
    tiles = [Tile(media.path(v.post.image_path), f"#{v.post.id} @{v.author}") for v in views]
    picture = await collage_file(media, tiles)
    lines = [title] + [f"#{v.post.id} @{v.author}: {cards.shorten(v.post.prompt, 80)}" for v in views]
    text = "\n".join(lines)
    buttons = [Button(f"Open #{v.post.id}", f"post {v.post.id}") for v in views]
    rows = tuple(tuple(buttons[i : i + BUTTONS_PER_ROW]) for i in range(0, len(buttons), BUTTONS_PER_ROW))
    return Reply(text=text, image=Image(picture, text), buttons=rows)


def _title(kind: str, day: date) -> str:
    when = day.strftime("%A %d %B").replace(" 0", " ")
    if kind == "bestof":
        return f"🏆 Best of the day, {when}"
    return f"☀️ Your daily digest, {when}: the best new images from the people you follow"


class DigestRenderer:
    """Payload {"posts": [ids], "date": "YYYY-MM-DD"} for kinds "digest" and "bestof"."""

    render_ahead = True  # depends on no earlier send: the outbox makes the collage while others go out

    def __init__(self, media: MediaStore) -> None:
        self.media = media

    async def render(self, session: AsyncSession, delivery: Delivery, payload: dict[str, Any]) -> Outgoing | None:
        if delivery.person_id is not None and not await reachable(session, delivery.platform, delivery.chat_id):
            return None
        views = await visible_views(session, payload["posts"])
        if not views:
            return None
        return Outgoing(
            await digest_reply(self.media, _title(delivery.kind, date.fromisoformat(payload["date"])), views)
        )

    async def sent(self, session: AsyncSession, delivery: Delivery, payload: dict[str, Any], ref: MessageRef) -> None:
        return None
