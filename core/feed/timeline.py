"""The home feed: newest public posts of the people you follow, paged by keyset on post id."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from core.cards import PostView, fetch_views
from core.models import Follow, Post
from core.visibility import shown

PAGE_SIZE = 5


@dataclass(frozen=True, slots=True)
class FeedPage:
    posts: list[PostView]  # newest first, with their card data
    older: int | None  # cursor for the next (older) page, if there is one
    newer: int | None  # cursor for the previous (newer) page, if there is one


async def feed_page(
    session: AsyncSession, person_id: int, *, before: int | None = None, after: int | None = None, size: int = PAGE_SIZE
) -> FeedPage:
    """`before` walks to older posts, `after` back to newer ones; neither gives the newest page."""
    postgres = session.get_bind().dialect.name == "postgresql"
    if after is not None:
        rows = await fetch_views(session, *_followed(person_id, Post.id > after, False, size + 1, postgres))
        has_newer = len(rows) > size
        posts = list(reversed(rows[:size]))
        has_older = True
    else:
        bound = Post.id < before if before is not None else true()
        rows = await fetch_views(session, *_followed(person_id, bound, True, size + 1, postgres))
        has_older = len(rows) > size
        posts = rows[:size]
        has_newer = before is not None
    if not posts:
        return FeedPage([], None, None)
    return FeedPage(
        posts,
        older=posts[-1].post.id if has_older else None,
        newer=posts[0].post.id if has_newer else None,
    )


def _followed(
    person_id: int, bound: ColumnElement[bool], newest_first: bool, limit: int, postgres: bool
) -> tuple[Select[Post], Any]:
    """Shown posts (core.visibility) of the people `person_id` follows, within `bound`, in id order, at most `limit`:
    the query, and the post entity it selects (for `fetch_views` to join the card data to)."""
    order = Post.id.desc() if newest_first else Post.id.asc()
    if not postgres:
        # SQLite reads every followed person's shown post ids from ix_posts_author_shown_id_hot alone and keeps the
        # best `limit` (a bounded sort of ids); only the page's rows are then read. Selecting whole posts in the
        # join made it read every candidate's row before sorting (7 ms for someone following 415 busy people).
        ids = (
            select(Post.id)
            .join(Follow, Follow.followee_id == Post.author_id)
            .where(Follow.follower_id == person_id, shown(), bound)
            .order_by(order)
            .limit(limit)
        )
        return select(Post).where(Post.id.in_(ids)).order_by(order), Post
    # PostgreSQL plans that join as a walk over all posts by id, testing each against the follows: for someone
    # who follows a few quiet people that reads most of the table (36 ms at 1M posts, see bench/README.md).
    # At most `limit` posts per followed person, then the first `limit` of those, costs a few index probes each.
    recent = (
        select(Post)
        .where(Post.author_id == Follow.followee_id, shown(), bound)
        .order_by(order)
        .limit(limit)
        .lateral("recent")
    )
    post = aliased(Post, recent)
    page = (
        select(post)
        .select_from(Follow)
        .join(recent, true())
        .where(Follow.follower_id == person_id)
        .order_by(post.id.desc() if newest_first else post.id.asc())
        .limit(limit)
        .subquery("page")
    )
    # The page is cut before the cards' data is joined to it: joined to the query above, PostgreSQL joined every
    # candidate (a page per followed person, 1,578 rows for someone following 271) and hashed all people first.
    paged = aliased(Post, page)
    return select(paged).order_by(paged.id.desc() if newest_first else paged.id.asc()), paged
