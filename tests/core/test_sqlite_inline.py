"""core.sqlite_inline: statements run on the loop's thread, and only what must wait goes to aiosqlite's.

The point of running inline is speed; the risk is an event loop held up. These tests hold a real write
lock from a second sqlite3 connection and send a real long query, and check that the loop kept serving
(a ticker kept ticking) while the statement waited, and that the answer was right.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from core import sqlite_inline
from core.db import create_engine


@contextmanager
def on_thread() -> Iterator[list[str]]:
    """Every call core.sqlite_inline sends to aiosqlite's worker thread."""
    hops: list[str] = []
    real = sqlite_inline.Connection.on_thread

    async def counted(self: sqlite_inline.Connection, fn: Any) -> Any:
        hops.append(getattr(fn, "__name__", repr(fn)))
        return await real(self, fn)

    sqlite_inline.Connection.on_thread = counted  # type: ignore[method-assign]
    try:
        yield hops
    finally:
        sqlite_inline.Connection.on_thread = real  # type: ignore[method-assign]


@pytest.fixture(autouse=True)
def fresh_long_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Which statements overran is remembered per process: each test starts with none."""
    monkeypatch.setattr(sqlite_inline, "LONG_STATEMENTS", sqlite_inline._LongStatements())


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    db = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'inline.db'}")
    async with db.begin() as conn:
        await conn.execute(text("CREATE TABLE t (x INTEGER)"))
    try:
        yield db
    finally:
        await db.dispose()


class Ticker:
    """Counts how often the event loop got to run it: it stops counting when the loop is held up."""

    def __init__(self) -> None:
        self.ticks = 0
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(0.01)
            self.ticks += 1

    def stop(self) -> None:
        self._task.cancel()


async def test_a_write_waits_for_another_connections_lock_while_the_loop_serves_others(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    holder = sqlite3.connect(tmp_path / "inline.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process in the middle of a write
    ticker = Ticker()

    async def insert(value: int) -> None:
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO t VALUES (:x)"), {"x": value})

    first = asyncio.create_task(insert(1))
    await asyncio.sleep(0.1)
    second = asyncio.create_task(insert(2))  # comes later: in line behind the first
    await asyncio.sleep(0.2)
    assert not first.done() and not second.done()  # they wait (inline they would fail at once: busy timeout 0)
    ticks_while_locked = ticker.ticks
    holder.execute("COMMIT")
    await asyncio.gather(first, second)
    ticker.stop()
    holder.close()
    assert ticks_while_locked >= 10, "the loop was held up while the writes waited for the lock"
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT x FROM t ORDER BY rowid"))).scalars().all() == [1, 2]
        assert (await conn.execute(text("PRAGMA busy_timeout"))).scalar() == 0


async def test_a_write_still_fails_when_the_lock_is_never_released(
    engine: AsyncEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_inline, "BUSY_TIMEOUT_MS", 200)
    holder = sqlite3.connect(tmp_path / "inline.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(Exception, match="database is locked"):
            async with engine.begin() as conn:
                await conn.execute(text("INSERT INTO t VALUES (1)"))
    finally:
        holder.execute("ROLLBACK")
        holder.close()


LONG_COUNT = (
    "SELECT count(*) FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT :n) SELECT x FROM c)"
)


async def test_a_long_read_moves_to_the_worker_thread_and_gives_the_full_answer(engine: AsyncEngine) -> None:
    ticker = Ticker()
    with on_thread() as hops:
        async with engine.connect() as conn:
            started = ticker.ticks
            count = (await conn.execute(text(LONG_COUNT), {"n": 3_000_000})).scalar()
            ticked = ticker.ticks - started
    ticker.stop()
    assert count == 3_000_000
    assert hops == ["statement"]
    assert ticked >= 3, "the loop was held up for the whole query"


async def test_a_read_that_keeps_overrunning_goes_straight_to_the_thread_until_it_is_short_again(
    engine: AsyncEngine,
) -> None:
    """Started inline and interrupted twice, then sent to the thread at once (no inline start wasted); once it
    runs short there, it is tried inline again."""
    query = text(LONG_COUNT)
    calls: list[str] = []
    real_run = sqlite_inline.Connection.run

    async def run(self: sqlite_inline.Connection, fn: Any, *, interruptible: bool = False) -> Any:
        if interruptible:  # a SELECT started inline (cursors are made and closed through run too)
            calls.append("inline")
        return await real_run(self, fn, interruptible=interruptible)

    sqlite_inline.Connection.run = run  # type: ignore[method-assign]
    try:
        async with engine.connect() as conn:
            for _ in range(3):
                await conn.execute(query, {"n": 3_000_000})
            assert calls == ["inline", "inline"]  # the third went straight to the thread
            for _ in range(2):  # short now (the same SQL): two short runs take both strikes back
                await conn.execute(query, {"n": 10})
            calls.clear()
            await conn.execute(query, {"n": 10})
            assert calls == ["inline"]
    finally:
        sqlite_inline.Connection.run = real_run  # type: ignore[method-assign]


async def test_a_short_read_and_a_write_stay_on_the_loops_thread(engine: AsyncEngine) -> None:
    with on_thread() as hops:
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO t VALUES (2)"))
            assert (await conn.execute(text(LONG_COUNT), {"n": 10})).scalar() == 10
    assert hops == []


async def test_many_rows_at_once_go_to_the_worker_thread_in_one_call(engine: AsyncEngine) -> None:
    with on_thread() as hops:
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO t VALUES (:x)"), [{"x": i} for i in range(1000)])
    assert hops == ["many"]
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar() == 1000


async def test_a_wal_checkpoint_runs_on_the_worker_thread(engine: AsyncEngine) -> None:
    """It copies pages back into the file and syncs it: tens of milliseconds the loop must not wait."""
    with on_thread() as hops:
        async with engine.connect() as conn:
            await conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
    assert hops == ["statement"]


LONG_INSERT = (
    "INSERT INTO t SELECT x FROM "
    "(WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT :n) SELECT x FROM c)"
)


async def test_a_long_write_runs_to_its_end_and_after_two_long_runs_goes_to_the_thread(engine: AsyncEngine) -> None:
    """A write is never interrupted (SQLite may say "interrupted" after it made its changes); one that keeps
    running long stops holding up the loop after its second long run."""
    for run in range(3):
        with on_thread() as hops:
            async with engine.begin() as conn:
                await conn.execute(text(LONG_INSERT), {"n": 300_000})
        assert hops == ([] if run < 2 else ["statement"]), run
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar() == 900_000


async def test_a_write_is_never_interrupted(engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite may report a write as interrupted after it made its changes, the transaction still open (the
    progress handler is called as the statement ends too): run again, an UPDATE whose WHERE no longer matches
    would report no row changed (the outbox then took its own claim for lost). So a write gets no progress
    handler: with a budget of 0 and a look at the clock at every step, it still runs once, inline."""
    async with engine.begin() as conn:
        await conn.execute(text("INSERT INTO t VALUES (1)"))
    monkeypatch.setattr(sqlite_inline, "INLINE_BUDGET", 0.0)
    monkeypatch.setattr(sqlite_inline, "_WATCH_EVERY", 1)
    with on_thread() as hops:
        async with engine.begin() as conn:
            changed = await conn.execute(text("UPDATE t SET x = x + 1 WHERE x = 1"))
            assert changed.rowcount == 1
    assert hops == []
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT x FROM t"))).scalar() == 2


async def test_a_long_later_write_of_a_transaction_runs_to_its_end_and_keeps_the_first(engine: AsyncEngine) -> None:
    """Interrupting it would roll back the write before it too: it is not interrupted."""
    with on_thread() as hops:
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO t VALUES (-1)"))
            await conn.execute(text(LONG_INSERT), {"n": 300_000})
    assert hops == []
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*), min(x) FROM t"))).one() == (300_001, -1)


async def test_background_work_runs_every_statement_on_the_thread(engine: AsyncEngine) -> None:
    with on_thread() as hops, sqlite_inline.background():
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO t VALUES (1)"))
            await conn.execute(text("DELETE FROM t WHERE x = 1"))
    assert hops == ["statement", "statement"]
    with on_thread() as hops:  # and outside it, inline again
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO t VALUES (1)"))
    assert hops == []


async def test_nothing_runs_inline_while_the_connection_is_busy_on_the_thread(tmp_path: Path) -> None:
    """A caller cancelled while its statement runs on the worker thread leaves it running there: whatever comes
    next on that connection (SQLAlchemy's rollback, say) must wait behind it, not use the connection at once from
    the loop's thread."""
    connector = partial(sqlite3.connect, tmp_path / "busy.db", **sqlite_inline.connect_args())
    connection = await sqlite_inline.Connection(connector, iter_chunk_size=64)
    busy = threading.Event()

    def slow() -> None:
        busy.set()
        time.sleep(0.3)
        busy.clear()

    try:
        running = asyncio.create_task(connection.on_thread(slow))
        await asyncio.to_thread(busy.wait, 5)
        running.cancel()
        overlapped = await connection.run(busy.is_set)
        assert not overlapped, "ran on the loop's thread while the worker thread still used the connection"
        assert await connection.run(lambda: 1) == 1
    finally:
        await connection.close()
