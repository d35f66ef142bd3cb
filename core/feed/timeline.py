"""The home feed: newest public posts of the people you follow, paged by keyset on post id."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.models import Follow, Post

PAGE_SIZE = 5


@dataclass(frozen=True, slots=True)
class FeedPage:
    posts: list[Post]  # newest first
    older: int | None  # cursor for the next (older) page, if there is one
    newer: int | None  # cursor for the previous (newer) page, if there is one


async def feed_page(
    session: AsyncSession, person_id: int, *, before: int | None = None, after: int | None = None, size: int = PAGE_SIZE
) -> FeedPage:
    """`before` walks to older posts, `after` back to newer ones; neither gives the newest page."""
    query = (
        select(Post)
        .join(Follow, Follow.followee_id == Post.author_id)
        .where(Follow.follower_id == person_id, Post.visibility == "public")
    )
    if after is not None:
        rows = list(await session.scalars(query.where(Post.id > after).order_by(Post.id.asc()).limit(size + 1)))
        has_newer = len(rows) > size
        posts = list(reversed(rows[:size]))
        has_older = True
    else:
        if before is not None:
            query = query.where(Post.id < before)
        rows = list(await session.scalars(query.order_by(Post.id.desc()).limit(size + 1)))
        has_older = len(rows) > size
        posts = rows[:size]
        has_newer = before is not None
    if not posts:
        return FeedPage([], None, None)
    return FeedPage(
        posts,
        older=posts[-1].id if has_older else None,
        newer=posts[0].id if has_newer else None,
    )
