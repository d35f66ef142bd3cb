"""Popularity with a time decay, as a score that does not change with the clock.

A post needs twice the likes to rank level with one posted DOUBLING_HOURS later. Because the
score depends only on the like count and the creation time, it is stored on the post, indexed,
and /top reads it top-down instead of scoring every recent post on each request.
"""

from __future__ import annotations

import functools
import math
from datetime import datetime, timedelta

from sqlalchemy import Float, Integer, Select, bindparam, literal_column, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from core.cards import PostView, view_of, with_card_data
from core.db import on_postgres
from core.models import Post, UTCDateTime, utcnow
from core.visibility import listed, not_blocked

DOUBLING_HOURS = 4.0
EPOCH = 1_767_225_600  # 2026-01-01T00:00:00Z, keeps the numbers small


def hot_score(like_count: int, created_at: datetime) -> float:
    age_units = (created_at.timestamp() - EPOCH) / (DOUBLING_HOURS * 3600)
    return math.log2(like_count + 1) + age_units


async def top_posts(
    session: AsyncSession, *, window: timedelta = timedelta(hours=24), limit: int = 5, viewer_id: int | None = None
) -> list[PostView]:
    """The best posts of the window, with their card data."""
    since = utcnow() - window
    params: dict[str, object] = {"since": since, "floor": hot_score(0, since)}
    if viewer_id is not None:
        params["viewer_id"] = viewer_id
    query = _top_query(limit, viewer_id is not None, on_postgres(session))
    return [view_of(row) for row in await session.execute(query, params)]


@functools.cache
def _top_query(limit: int, for_viewer: bool, postgres: bool) -> Select[Post, str, str | None, str | None]:
    """Built once, with the window and the viewer as bound parameters (building it per call cost more than
    running its cached compilation). Every post of the window scores at least hot_score(0, since): saying so
    bounds the walk down ix_posts_hot, which SQLite then takes over ix_posts_created_at (sorting the day's ~33k
    posts) and which stops at once on a day without posts instead of reading the whole index."""
    since = bindparam("since", type_=UTCDateTime())
    query = select(Post).where(listed(), Post.created_at >= since, Post.hot >= bindparam("floor", type_=Float))
    if for_viewer:
        query = query.where(not_blocked(bindparam("viewer_id", type_=Integer)))
    # The LIMIT is written into the SQL, so PostgreSQL's plan for all runs of the statement knows it.
    query = query.order_by(Post.hot.desc(), Post.id.desc()).limit(literal_column(str(limit), Integer))
    if not postgres:
        return with_card_data(query)
    # On PostgreSQL the page is cut before the cards' data is joined to it: joined first, it sized the joins'
    # caches for the ~27k posts of the day, a millisecond each run (SQLite's walk stops at the page anyway).
    page = query.subquery("page")
    paged = aliased(Post, page)
    return with_card_data(select(paged).order_by(paged.hot.desc(), paged.id.desc()), paged)
