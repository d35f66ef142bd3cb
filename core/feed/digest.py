"""Daily digests: for each person, the best new posts of the last 24 hours from the people they
follow, topped up with trending posts, delivered once a day at their own hour through the outbox.

Composition streams people in chunks and picks each chunk's posts with one windowed query; it
writes one outbox row per person per local day (key `digest:<person>:<date>`, unique), including
a "skipped" row when there is nothing to send, so a pass never looks at that person again that
day. The picture is rendered when the row is sent, so composing 100,000 digests stays cheap.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import String, cast, exists, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.sql.elements import ColumnElement

from core.config import Settings, parse_clock
from core.db import insert_ignore_many
from core.feed.localtime import digest_due
from core.feed.targets import Target, reachable_targets
from core.models import Delivery, Follow, Person, Post, utcnow
from core.visibility import blocked_sets, listed, shown

WINDOW = timedelta(hours=24)
CHUNK = 1000
TRENDING_POOL = 30


@dataclass
class PassStats:
    considered: int = 0
    queued: int = 0
    empty: int = 0
    unreachable: int = 0
    seconds: float = 0.0
    dates: set[date] = field(default_factory=set)


def digest_key(person_id: int, day: date) -> str:
    return f"digest:{person_id}:{day.isoformat()}"


async def trending(session: AsyncSession, since: datetime, limit: int = TRENDING_POOL) -> list[tuple[int, int]]:
    """(post id, author id) of the hottest public posts since `since`."""
    rows = await session.execute(
        select(Post.id, Post.author_id)
        .where(listed(), Post.created_at >= since)
        .order_by(Post.hot.desc(), Post.id.desc())
        .limit(limit)
    )
    return [(post_id, author_id) for post_id, author_id in rows]


@dataclass(frozen=True, slots=True)
class Window:
    """The posts a digest may pick from: those created since `since`, all of which have an id from `first` on
    (None: there are none)."""

    since: datetime
    first: int | None


async def window_since(session: AsyncSession, since: datetime) -> Window:
    """Read once per pass, not once per chunk: it walks an index over the whole day."""
    # `+ 0`: SQLite answers a bare min(id) by walking the table in id order until a post is recent enough, half of
    # it when the posts span two days (23 ms at 200,000 posts, and it ran for each of a pass's ~140 chunks); over
    # an expression it reads ix_posts_created_at from `since` on instead.
    first = await session.scalar(select(func.min(Post.id + 0)).where(Post.created_at >= since))
    return Window(since, first)


async def followed_picks(
    session: AsyncSession, person_ids: list[int], window: Window, size: int
) -> dict[int, list[int]]:
    """The best `size` posts per person from the people they follow, ranked by the decayed score."""
    first, since = window.first, window.since
    if first is None:
        return {}
    rank = (
        func.row_number()
        .over(partition_by=Follow.follower_id, order_by=(Post.hot.desc(), Post.id.desc()))
        .label("rank")
    )
    ranked = (
        select(Follow.follower_id.label("person_id"), Post.id.label("post_id"), rank)
        .join(Post, Post.author_id == Follow.followee_id)
        .where(
            Follow.follower_id.in_(person_ids),
            # Every post since `since` has an id from `first` on: each author's walk starts at the last day.
            Post.id >= first,
            Post.created_at >= since,
            shown(),  # with the above and the ranking, all from ix_posts_author_shown_id_hot: no post row is read
        )
        .subquery()
    )
    # On the session's connection, not through the ORM's execution: plain rows, and for the ~5,000 of a chunk the
    # ORM's row processing cost a tenth of the whole pass.
    connection = await session.connection()
    rows = await connection.execute(
        select(ranked.c.person_id, ranked.c.post_id)
        .where(ranked.c.rank <= size)
        .order_by(ranked.c.person_id, ranked.c.rank)
    )
    picks: dict[int, list[int]] = {}
    for person_id, post_id in rows:
        picks.setdefault(person_id, []).append(post_id)
    return picks


def top_up(
    picks: list[int], pool: list[tuple[int, int]], person_id: int, size: int, blocked: set[int] | None = None
) -> list[int]:
    """Fill up to `size` with trending posts the person did not make, does not already have, and
    whose authors are not on the other side of a block with them."""
    chosen = list(picks)
    for post_id, author_id in pool:
        if len(chosen) >= size:
            break
        if author_id != person_id and post_id not in chosen and author_id not in (blocked or ()):
            chosen.append(post_id)
    return chosen


def _row(person_id: int, day: date, target: Target | None, posts: list[int]) -> dict[str, object]:
    now = utcnow()
    status = "pending" if posts and target else "skipped"
    error = None if status == "pending" else ("nothing new" if not posts else "unreachable")
    return {
        "key": digest_key(person_id, day),
        "platform": target.platform if target else "-",
        "chat_id": target.chat_id if target else "-",
        "kind": "digest",
        "payload": json.dumps({"posts": posts, "date": day.isoformat()}),
        "person_id": person_id,
        "status": status,
        "error": error,
        "attempts": 0,
        "not_before": now,
        "created_at": now,
    }


def _undelivered(day: date) -> ColumnElement[bool]:
    key = literal("digest:") + cast(Person.id, String) + literal(f":{day.isoformat()}")
    return ~exists().where(Delivery.key == key)


async def _groups(session: AsyncSession, handle: str | None) -> list[tuple[str | None, str | None]]:
    query = select(Person.timezone, Person.digest_time).where(Person.digest_enabled.is_(True)).distinct()
    if handle:
        query = query.where(Person.handle == handle)
    return [(tz, at) for tz, at in await session.execute(query)]


async def compose_pass(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    now: datetime,
    *,
    force: bool = False,
    handle: str | None = None,
) -> PassStats:
    """Queue today's digest for everyone whose hour has come (everyone, with `force`) and who has
    not had today's yet. Safe to run again, or in two processes at once: the key is unique."""
    stats, started = PassStats(), time.perf_counter()
    async with sessions() as session:
        groups = await _groups(session, handle)
        pool = await trending(session, now - WINDOW)
        window = await window_since(session, now - WINDOW)
    for zone_name, at in groups:
        due, day = digest_due(
            now, ZoneInfo(zone_name or settings.default_timezone), parse_clock(at or settings.digest_time)
        )
        if due or force:
            stats.dates.add(day)
            await _compose_group(_Group(sessions, settings, window, zone_name, at, day, pool, handle, stats))
    stats.seconds = time.perf_counter() - started
    return stats


@dataclass(frozen=True, slots=True)
class _Group:
    """The people of one (time zone, digest time) group whose digest is due, and what their chunks are read and
    written with."""

    sessions: async_sessionmaker[AsyncSession]
    settings: Settings
    window: Window
    zone_name: str | None
    at: str | None
    day: date
    pool: list[tuple[int, int]]  # trending posts, (post, author)
    handle: str | None  # only this person (the operators' command)
    stats: PassStats


@dataclass(frozen=True, slots=True)
class _Chunk:
    """What composing one chunk of people reads: who they are, where to reach them, their picks, their blocks."""

    ids: list[int]
    targets: dict[int, Target]
    picks: dict[int, list[int]]
    blocks: dict[int, set[int]]


async def _compose_group(group: _Group) -> None:
    """Chunk after chunk, the next one's queries running while this one's rows are built and written: the
    long queries wait on the database (or SQLite's worker thread), the rows are Python's work, and the
    two overlap instead of taking turns."""

    def read(after: int) -> asyncio.Task[_Chunk | None]:
        return asyncio.create_task(_read_chunk(group, after), name="digest-chunk")

    reading = read(0)
    try:
        while (chunk := await reading) is not None:
            reading = read(chunk.ids[-1])
            await _write_chunk(group, chunk)
    finally:
        reading.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reading


async def _read_chunk(group: _Group, after: int) -> _Chunk | None:
    async with group.sessions() as session:
        query = (
            select(Person.id)
            .where(
                Person.id > after,
                Person.digest_enabled.is_(True),
                Person.timezone.is_(None) if group.zone_name is None else Person.timezone == group.zone_name,
                Person.digest_time.is_(None) if group.at is None else Person.digest_time == group.at,
                _undelivered(group.day),
            )
            .order_by(Person.id)
            .limit(CHUNK)
        )
        if group.handle:
            query = query.where(Person.handle == group.handle)
        ids = list(await session.scalars(query))
        if not ids:
            return None
        targets = await reachable_targets(session, ids)
        picks = await followed_picks(session, ids, group.window, group.settings.digest_size)
        blocks = await blocked_sets(session, ids)
    return _Chunk(ids, targets, picks, blocks)


async def _write_chunk(group: _Group, chunk: _Chunk) -> None:
    stats, size = group.stats, group.settings.digest_size
    rows = []
    for person_id in chunk.ids:
        posts = top_up(chunk.picks.get(person_id, []), group.pool, person_id, size, chunk.blocks.get(person_id))
        rows.append(_row(person_id, group.day, chunk.targets.get(person_id), posts))
        stats.empty += not posts
        stats.unreachable += bool(posts) and person_id not in chunk.targets
    async with group.sessions() as session:
        await session.execute(insert_ignore_many(session, Delivery), rows)
        await session.commit()
    stats.considered += len(chunk.ids)
    stats.queued += sum(1 for row in rows if row["status"] == "pending")
