"""The home feed: newest public posts of the people you follow, paged by keyset on post id."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BindParameter, ColumnElement, Integer, Select, bindparam, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from core.cards import PostView, view_of, with_card_data
from core.db import on_postgres
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
    postgres = on_postgres(session)
    direction = "after" if after is not None else "before" if before is not None else None
    params = {"person_id": person_id} if direction is None else {"person_id": person_id, "cursor": after or before}
    rows = [view_of(row) for row in await session.execute(_page_query(direction, size + 1, postgres), params)]
    if after is not None:
        has_newer = len(rows) > size
        posts = list(reversed(rows[:size]))
        has_older = True
    else:
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


@functools.cache
def _page_query(direction: str | None, limit: int, postgres: bool) -> Select[Post, str, str | None, str | None]:
    """A page with its cards' data, built once per shape with the person and the cursor as bound parameters:
    building the statement and its cache key on every call cost more than running it (bench/README.md)."""
    cursor = bindparam("cursor", type_=Integer)
    bound = {None: true(), "before": Post.id < cursor, "after": Post.id > cursor}[direction]
    query, post = _followed(bindparam("person_id", type_=Integer), bound, direction != "after", limit, postgres)
    return with_card_data(query, post)


def _followed(
    person_id: BindParameter[int], bound: ColumnElement[bool], newest_first: bool, limit: int, postgres: bool
) -> tuple[Select[Post], Any]:
    """Shown posts (core.visibility) of the people `person_id` follows, within `bound`, in id order, at most `limit`:
    the query, and the post entity it selects (for `with_card_data` to join the card data to)."""
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
