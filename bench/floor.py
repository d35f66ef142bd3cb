"""The floor: the minimal SQL each command needs, sent straight through the driver on the same database.

Python's `sqlite3` for SQLite (no thread, no SQLAlchemy), asyncpg for PostgreSQL. The statements are
what a command cannot do without: who is asking (identity and person in one statement), the page of
posts with the handles for their cards, the counts of a profile, the writes of a like or a follow in
one transaction. The command layer's time over this, in the same run on the same file, is ours.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import asyncpg
from sqlalchemy.engine import make_url

from bench.network import PLATFORM
from core.db import SQLITE_PRAGMAS
from core.feed.ranking import hot_score
from core.feed.timeline import PAGE_SIZE

Row = Sequence[Any]

WHO = (
    "SELECT p.id, p.handle FROM identities i JOIN people p ON p.id = i.person_id"
    " WHERE i.platform = $1 AND i.platform_user_id = $2"
)
# Posts with their cards' handles; the caller puts the page query in front.
CARDS = (
    "SELECT c.id, c.prompt, c.image_path, c.parent_id, c.visibility, c.like_count, a.handle, pa.handle"
    " FROM page c JOIN people a ON a.id = c.author_id"
    " LEFT JOIN posts pp ON pp.id = c.parent_id LEFT JOIN people pa ON pa.id = pp.author_id ORDER BY {order}"
)
_PAGE_COLUMNS = "id, author_id, prompt, image_path, parent_id, visibility, like_count"
# Every followed person's public post ids from the covering ix_posts_author_shown_id_hot, the best page of them
# (a bounded sort of ids), then only the page's rows: SQLite's best plan here (core/feed/timeline.py).
FEED_SQLITE = (
    f"WITH page AS (SELECT {_PAGE_COLUMNS} FROM posts WHERE id IN ("
    " SELECT q.id FROM posts q JOIN follows f ON f.followee_id = q.author_id"
    " WHERE f.follower_id = $1 AND q.visibility = 'public' AND q.status = 'visible' AND q.id < $2"
    f" ORDER BY q.id DESC LIMIT {PAGE_SIZE + 1})) "
)
# At most a page of each followed person's newest public posts, then a page of those (core/feed/timeline.py).
FEED_POSTGRES = (
    f"WITH page AS (SELECT {', '.join('r.' + c for c in _PAGE_COLUMNS.split(', '))} FROM follows f"
    f" CROSS JOIN LATERAL (SELECT {_PAGE_COLUMNS} FROM posts WHERE author_id = f.followee_id"
    f"  AND visibility = 'public' AND status = 'visible' AND id < $2 ORDER BY id DESC LIMIT {PAGE_SIZE + 1}) r"
    f" WHERE f.follower_id = $1 ORDER BY r.id DESC LIMIT {PAGE_SIZE + 1}) "
)
# Walks ix_posts_hot downwards from the top; every post of the last day is above the floor of its score.
TOP = (
    f"WITH page AS (SELECT {_PAGE_COLUMNS}, hot FROM posts WHERE visibility = 'public' AND status = 'visible'"
    " AND author_private = false AND hot >= $2"
    " AND created_at >= $1 ORDER BY hot DESC, id DESC LIMIT 5) "
)
PROFILE = (
    "SELECT (SELECT count(*) FROM posts WHERE author_id = $1 AND visibility = 'public'),"
    " (SELECT coalesce(sum(like_count), 0) FROM posts WHERE author_id = $1 AND visibility = 'public'),"
    " (SELECT count(*) FROM follows WHERE followee_id = $1), (SELECT count(*) FROM follows WHERE follower_id = $1)"
)
LATEST = (
    "SELECT id, prompt, like_count FROM posts WHERE author_id = $1 AND visibility = 'public' ORDER BY id DESC LIMIT 5"
)
PLATFORMS = "SELECT DISTINCT platform FROM identities WHERE person_id = $1"
BY_HANDLE = "SELECT id, handle, display_name, bio FROM people WHERE handle = $1"
POST = "SELECT id, author_id, visibility, created_at FROM posts WHERE id = $1"
LIKE = "INSERT INTO likes (post_id, person_id, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING"
UNLIKE = "DELETE FROM likes WHERE post_id = $1 AND person_id = $2"
COUNT = "UPDATE posts SET like_count = like_count + $2 WHERE id = $1 RETURNING like_count"
HOT = "UPDATE posts SET hot = $2 WHERE id = $1 AND like_count = $3"
NOTIFY = "INSERT INTO notifications (recipient_id, actor_id, kind, post_id, created_at) VALUES ($1, $2, $3, $4, $5)"
WITHDRAW = "DELETE FROM notifications WHERE recipient_id = $1 AND actor_id = $2 AND kind = $3 AND batched_at IS NULL"
FOLLOW = "INSERT INTO follows (follower_id, followee_id, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING"
UNFOLLOW = "DELETE FROM follows WHERE follower_id = $1 AND followee_id = $2"


class Driver(Protocol):
    def at(self, moment: datetime) -> object: ...
    async def rows(self, sql: str, *args: object) -> list[Row]: ...
    async def begin(self) -> None: ...
    async def commit(self) -> None: ...
    async def close(self) -> None: ...


class SqliteDriver:
    """Python's sqlite3 on the same file with the app's pragmas; autocommit, transactions explicit."""

    feed = FEED_SQLITE

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        for pragma in SQLITE_PRAGMAS:
            self.conn.execute(pragma)

    def at(self, moment: datetime) -> object:
        return moment.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ")  # SQLAlchemy's text format

    async def rows(self, sql: str, *args: object) -> list[Row]:
        return self.conn.execute(_numbered(sql), args).fetchall()

    async def begin(self) -> None:
        self.conn.execute("BEGIN")

    async def commit(self) -> None:
        self.conn.execute("COMMIT")

    async def close(self) -> None:
        self.conn.close()


def _numbered(sql: str) -> str:
    """$1 (asyncpg) -> ?1 (sqlite3): both bind by number, so one text serves both."""
    return re.sub(r"\$(\d+)", r"?\1", sql)


class PostgresDriver:
    feed = FEED_POSTGRES

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    @classmethod
    async def connect(cls, url: str) -> PostgresDriver:
        dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        return cls(await asyncpg.connect(dsn))

    def at(self, moment: datetime) -> object:
        return moment

    async def rows(self, sql: str, *args: object) -> list[Row]:
        return [tuple(record) for record in await self.conn.fetch(sql, *args)]

    async def begin(self) -> None:
        await self.conn.execute("BEGIN")

    async def commit(self) -> None:
        await self.conn.execute("COMMIT")

    async def close(self) -> None:
        await self.conn.close()


async def open_driver(url: str) -> SqliteDriver | PostgresDriver:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return SqliteDriver(Path(parsed.database or ""))
    return await PostgresDriver.connect(url)


class Floor:
    """One coroutine per command, taking what the benchmark's command call takes."""

    def __init__(self, driver: SqliteDriver | PostgresDriver) -> None:
        self.db = driver

    async def who(self, user_id: str) -> int:
        [(person_id, _handle)] = await self.db.rows(WHO, PLATFORM, user_id)
        return int(person_id)

    async def feed(self, user_id: str, before: int | None = None) -> list[Row]:
        me = await self.who(user_id)
        bound = before if before is not None else 2**62
        return await self.db.rows(self.db.feed + CARDS.format(order="c.id DESC"), me, bound)

    async def top(self, user_id: str) -> list[Row]:
        await self.who(user_id)
        since = datetime.now(UTC) - timedelta(hours=24)
        sql = TOP + CARDS.format(order="c.hot DESC, c.id DESC")
        return await self.db.rows(sql, self.db.at(since), hot_score(0, since))

    async def profile(self, user_id: str, handle: str) -> list[Row]:
        await self.who(user_id)
        [person] = await self.db.rows(BY_HANDLE, handle)
        rows = await self.db.rows(PROFILE, person[0])
        rows += await self.db.rows(LATEST, person[0])
        return rows + await self.db.rows(PLATFORMS, person[0])

    async def like(self, user_id: str, post_id: int) -> bool:
        """Likes, or takes the like back: the writes of one press, in one transaction, and the card's handles."""
        me = await self.who(user_id)
        now = datetime.now(UTC)
        await self.db.begin()
        [(_, author_id, _visibility, created_at)] = await self.db.rows(POST, post_id)
        liked = bool(await self.db.rows(LIKE + " RETURNING post_id", post_id, me, self.db.at(now)))
        if not liked:
            await self.db.rows(UNLIKE, post_id, me)
        [(count,)] = await self.db.rows(COUNT, post_id, 1 if liked else -1)
        created = created_at if isinstance(created_at, datetime) else datetime.fromisoformat(created_at)
        await self.db.rows(HOT, post_id, hot_score(count, created.replace(tzinfo=UTC)), count)
        if liked:
            await self.db.rows(NOTIFY, author_id, me, "like", post_id, self.db.at(now))
        else:
            await self.db.rows(WITHDRAW + " AND post_id = $4", author_id, me, "like", post_id)
        await self.db.commit()
        await self.db.rows(
            "WITH page AS (SELECT id, author_id, prompt, image_path, parent_id, visibility, like_count FROM posts"
            " WHERE id = $1) " + CARDS.format(order="c.id"),
            post_id,
        )
        return liked

    async def follow(self, user_id: str, handle: str) -> None:
        me = await self.who(user_id)
        await self.db.begin()
        [other] = await self.db.rows(BY_HANDLE, handle)
        now = self.db.at(datetime.now(UTC))
        await self.db.rows(FOLLOW, me, other[0], now)
        await self.db.rows(NOTIFY, other[0], me, "follow", None, now)
        await self.db.commit()

    async def unfollow(self, user_id: str, handle: str) -> None:
        me = await self.who(user_id)
        await self.db.begin()
        [other] = await self.db.rows(BY_HANDLE, handle)
        await self.db.rows(UNFOLLOW, me, other[0])
        await self.db.rows(WITHDRAW + " AND post_id IS NULL", other[0], me, "follow")
        await self.db.commit()
