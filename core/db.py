"""The database engine and sessions (SQLAlchemy 2 async)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, Insert, and_, event, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import CursorResult, Result, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.util import await_

from core import sqlite_inline
from core.models import Base, table

# WAL lets readers (feeds, profiles) run while a writer commits; NORMAL sync is safe under WAL
# (a power cut can lose the last commit, never corrupt the file). How long a second writer waits for the
# lock (instead of failing at once with "database is locked") is core.sqlite_inline's BUSY_TIMEOUT_MS: it
# waits without holding up the event loop.
SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    # SQLite folds the WAL back into the file inside the commit that pushes it past this many pages. The app's
    # Checkpointer does that work off the request path every second; this is only the backstop for when it
    # is not running (tools, tests) or falls behind. At the default 1,000, one like in about a hundred paid ~4 ms.
    "PRAGMA wal_autocheckpoint=10000",
)
CHECKPOINT_EVERY = 1.0  # seconds between background checkpoints

log = logging.getLogger(__name__)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _prepare_sqlite_file(url: str) -> None:
    database = make_url(url).database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)


def _apply_sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    for pragma in SQLITE_PRAGMAS:
        cursor.execute(pragma)
    cursor.close()


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    # A database error's message would otherwise carry the statement's values, which people wrote
    # (prompts, names), into the log.
    kwargs.setdefault("hide_parameters", True)
    if is_sqlite(url):
        _prepare_sqlite_file(url)
        if make_url(url).get_driver_name() == "aiosqlite":
            kwargs.setdefault("module", sqlite_inline.DBAPI())
            kwargs["connect_args"] = {**sqlite_inline.connect_args(), **kwargs.get("connect_args", {})}
        engine = create_async_engine(url, **kwargs)
        event.listen(engine.sync_engine, "connect", _apply_sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    engine = create_async_engine(url, **kwargs)
    if not kwargs.get("pool_pre_ping"):
        event.listen(engine.sync_engine, "checkout", _ping_postgres)
        event.listen(engine.sync_engine, "checkin", _note_checkin)
    return engine


# A connection given back this recently is handed out again without a ping, as HikariCP does (its
# aliveBypassWindowMs, 500 ms by default): it was just working, and a ping per command is a round trip
# more than /top's two statements. A connection that breaks inside the window fails one command, and
# SQLAlchemy then drops every pooled connection as old as it, so the next command reconnects.
PING_AFTER_IDLE_SECONDS = 0.5
_RETURNED_AT = "returned_at"  # in the pool record's info: time.monotonic() of the last checkin


def _note_checkin(_dbapi_connection: Any, record: Any) -> None:
    record.info[_RETURNED_AT] = time.monotonic()


def _ping_postgres(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    """A pooled connection idle for a while is tried before it is handed out, so the first command after
    a server restart (or an idle connection cut by a firewall) gets a new connection instead of an
    error. This is `pool_pre_ping` in one round trip: SQLAlchemy's asyncpg ping wraps its `;` in BEGIN
    and ROLLBACK (for PgBouncer's transaction mode, which we do not use), three round trips."""
    returned = record.info.get(_RETURNED_AT)
    if returned is not None and time.monotonic() - returned < PING_AFTER_IDLE_SECONDS:
        return
    try:
        await_(dbapi_connection.driver_connection.fetchrow(";"))
    except Exception as exc:  # whatever broke it, the pool replaces the connection and tries once more
        raise DisconnectionError(f"the pooled connection failed its ping: {exc!r}") from exc


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def on_postgres(session: AsyncSession) -> bool:
    """Whether the session's database is PostgreSQL, for the statements built per dialect."""
    return session.get_bind().dialect.name == "postgresql"


def insert_ignore(session: AsyncSession, table: type, **values: Any) -> Insert:
    """INSERT ... ON CONFLICT DO NOTHING on either dialect, so a repeated request is harmless."""
    insert = pg_insert if on_postgres(session) else sqlite_insert
    return insert(table).values(**values).on_conflict_do_nothing()


def insert_ignore_many(session: AsyncSession, model: type[Base]) -> Insert:
    """The same, to execute with a row's values or a list of rows (one executemany). Built once per
    dialect and table, on the table (not the ORM entity, whose bulk insert returns no row count): the hot
    commands (a like, a follow) pay neither the building nor its cache key."""
    return _insert_ignoring(on_postgres(session), model)


@functools.cache
def _insert_ignoring(postgres: bool, model: type[Base]) -> Insert:
    return (pg_insert if postgres else sqlite_insert)(table(model)).on_conflict_do_nothing()


def locked_in_id_order(
    postgres: bool, id_column: InstrumentedAttribute[int], *where: ColumnElement[bool]
) -> ColumnElement[bool]:
    """The WHERE of an UPDATE over rows another statement may be updating too: `where` itself on SQLite,
    which has one writer; on PostgreSQL `id IN (the rows matching where, locked in ascending id)`. An UPDATE
    locks rows in the order its plan visits them, a seq scan's in physical order, which every update of a row
    changes (its new version goes elsewhere): two such statements over shared rows could lock them in
    opposite orders and deadlock. Locked in one order first (LockRows above the sort), each waits for the
    other instead."""
    if not postgres:
        return and_(*where)
    return id_column.in_(select(id_column).where(*where).order_by(id_column).with_for_update())


def rowcount(result: Result[Any]) -> int:
    """Rows an INSERT, UPDATE or DELETE touched. AsyncSession.execute is typed as returning a plain
    Result, which has no rowcount; for those statements it returns a CursorResult, which does."""
    if not isinstance(result, CursorResult):
        raise TypeError(f"rowcount needs the result of an INSERT, UPDATE or DELETE, not {type(result).__name__}")
    return result.rowcount


class Checkpointer:
    """A background `PRAGMA wal_checkpoint(PASSIVE)` on a timer, so that no command's commit pays for folding
    the WAL back into the database file. PASSIVE never waits for readers or writers; it copies what it can."""

    def __init__(self, engine: AsyncEngine, every: float = CHECKPOINT_EVERY) -> None:
        self.engine, self.every = engine, every
        self.frames_done = 0  # WAL frames copied back so far, for tests and the benchmark
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if self.engine.dialect.name == "sqlite" and self._task is None:
            self._task = asyncio.create_task(self._run(), name="wal-checkpoint")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def checkpoint(self) -> None:
        async with self.engine.connect() as conn:
            row: list[Any] = list((await conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")).one())
        self.frames_done += max(0, int(row[2]))  # (busy, frames in the log, frames checkpointed)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            try:
                await self.checkpoint()
            except Exception:  # a failed checkpoint is retried next time; SQLite's own one is the backstop
                log.warning("WAL checkpoint failed", exc_info=True)
