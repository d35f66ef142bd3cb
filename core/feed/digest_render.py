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
from core.models import Delivery, Follow, Post
from core.outbox import Outgoing, reachable
from core.replies import Button, Image, Reply
from core.visibility import VISIBLE

BUTTONS_PER_ROW = 3
TRENDING_MARK = "🔥 "


async def visible_views(session: AsyncSession, post_ids: list[int]) -> list[cards.PostView]:
    posts = {p.id: p for p in await session.scalars(select(Post).where(Post.id.in_(post_ids)))}
    # Composed hours earlier, perhaps: a post hidden or deleted since then is left out now.
    ordered = [posts[i] for i in post_ids if i in posts and posts[i].is_public and posts[i].status == VISIBLE]
    return await cards.views(session, ordered)


async def trending_ids(session: AsyncSession, person_id: int | None, views: list[cards.PostView]) -> set[int]:
    """The posts whose authors the person does not follow: the trending ones a digest was topped up with."""
    if person_id is None:
        return set()
    authors = {v.post.author_id for v in views}
    followed = set(
        await session.scalars(
            select(Follow.followee_id).where(Follow.follower_id == person_id, Follow.followee_id.in_(authors))
        )
    )
    return {v.post.id for v in views if v.post.author_id not in followed}


async def digest_reply(
    media: MediaStore, title: str, views: list[cards.PostView], trending: set[int] | None = None
) -> Reply:
    """`trending`: posts from people the reader does not follow, marked so in the text."""
    tiles = [Tile(media.path(v.post.image_path), f"#{v.post.id} @{v.author}") for v in views]
    picture = await collage_file(media, tiles)
    hot = trending or set()
    lines = [title] + [
        f"{TRENDING_MARK if v.post.id in hot else ''}#{v.post.id} @{v.author}: {cards.shorten(v.post.prompt, 80)}"
        for v in views
    ]
    text = "\n".join(lines)
    buttons = [Button(f"Open #{v.post.id}", f"post {v.post.id}") for v in views]
    rows = tuple(tuple(buttons[i : i + BUTTONS_PER_ROW]) for i in range(0, len(buttons), BUTTONS_PER_ROW))
    return Reply(text=text, image=Image(picture, text), buttons=rows)


def _title(kind: str, day: date, *, followed: int, trending: int) -> str:
    when = day.strftime("%A %d %B").replace(" 0", " ")
    if kind == "bestof":
        return f"🏆 Best of the day, {when}"
    return f"☀️ Your daily digest, {when}: {digest_subtitle(followed, trending)}"


def digest_subtitle(followed: int, trending: int) -> str:
    """Says honestly where the posts come from: a digest is topped up with trending posts from others."""
    if not trending:
        return "the best new images from the people you follow"
    if not followed:
        return f"{TRENDING_MARK}trending new images (nothing new from the people you follow)"
    return f"the best new images from the people you follow, and {TRENDING_MARK}trending ones from others"


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
        hot = await trending_ids(session, delivery.person_id if delivery.kind == "digest" else None, views)
        day = date.fromisoformat(payload["date"])
        title = _title(delivery.kind, day, followed=len(views) - len(hot), trending=len(hot))
        return Outgoing(await digest_reply(self.media, title, views, hot))

    async def sent(self, session: AsyncSession, delivery: Delivery, payload: dict[str, Any], ref: MessageRef) -> None:
        return None
