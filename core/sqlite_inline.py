"""SQLite statements on the event loop's own thread when they are quick, on aiosqlite's thread when they wait.

aiosqlite runs every DBAPI call on a worker thread and wakes the event loop with the answer, and SQLAlchemy's
adapter makes four such calls per statement (cursor, execute, fetch, close). On these machines one round trip
to the thread and back costs about 0.1 ms, while the statements a command sends take a few microseconds each
in SQLite itself: a `/like` spent more time waiting for thread wake-ups than SQLite spent on it.

So a statement runs right where it is called, on the loop's thread, unless it would hold the loop up:

- a lock: run here, SQLite is told not to wait (busy timeout 0). When another connection holds the write lock,
  SQLite says SQLITE_BUSY before doing anything, and the statement is tried again every few milliseconds, for up
  to BUSY_TIMEOUT_MS, in line with the process's other writes waiting, while the loop serves everyone else;
- a long read: a SELECT still running after INLINE_BUDGET seconds is interrupted (a progress handler) and run
  again, from the start, on the worker thread. Only a SELECT: SQLite may report a write as interrupted after it
  has made its changes (the progress handler is also called as the statement ends), so running it again would
  apply it twice or, with its WHERE no longer matching, report no rows changed. A write runs to its end;
- a statement that keeps running long (the digests' queries over a thousand people, a bulk delete) goes straight
  to the thread after two long runs, until it runs short there again;
- many rows at once (`executemany`) and upkeep (a WAL checkpoint, which copies pages and syncs the file;
  VACUUM; ANALYZE): always the worker thread, in one hop;
- background work (`with background():`, the scheduler's jobs: digests, pruning, purges): every statement
  on the worker thread. Nobody waits for it, and a bulk DELETE in the middle of its transaction must not
  hold up the commands.

A statement's execute and its fetch are one call, so even on the worker thread it is one hop, not four.
Everything else (the sqlite3 connection, aiosqlite's thread and its queue, SQLAlchemy's dialect) is as it was.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import sqlite3
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from functools import partial
from typing import Any, TypeVar

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util.concurrency import await_

BUSY_TIMEOUT_MS = 5000  # how long a statement waits for another connection's write lock
INLINE_BUDGET = 0.002  # seconds a SELECT may hold the event loop before it moves to the worker thread
_WATCH_EVERY = 1000  # SQLite virtual machine steps between looks at the clock

T = TypeVar("T")


def connect_args() -> dict[str, Any]:
    """What `sqlite3.connect` needs for this: no waiting for locks on the loop's thread, and a connection
    that the loop's thread and aiosqlite's may both use (one at a time: see `Connection`)."""
    return {"timeout": 0, "check_same_thread": False}


def _is_busy(error: sqlite3.Error) -> bool:
    return getattr(error, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_BUSY


def _is_interrupted(error: sqlite3.Error) -> bool:
    return getattr(error, "sqlite_errorcode", 0) == sqlite3.SQLITE_INTERRUPT


_BACKGROUND: ContextVar[bool] = ContextVar("sqlite_background", default=False)


@contextlib.contextmanager
def background() -> Iterator[None]:
    """Within it (and in the tasks started within it), every statement runs on aiosqlite's thread."""
    token = _BACKGROUND.set(True)
    try:
        yield
    finally:
        _BACKGROUND.reset(token)


def _is_select(operation: str) -> bool:
    return operation.lstrip()[:6].upper() == "SELECT"


_UPKEEP = ("PRAGMA WAL_CHECKPOINT", "VACUUM", "ANALYZE")


def _is_upkeep(operation: str) -> bool:
    return operation.lstrip().upper().startswith(_UPKEEP)


class _Overran(Exception):
    """A statement ran past its budget on the loop's thread and was interrupted (it changed nothing)."""


class _LongStatements:
    """The statements (by their SQL) that ran past the budget lately. One that did STRIKES times in a row is
    sent straight to the worker thread, rather than holding the loop up (a write) or being started inline only
    to be interrupted and started again (a read); every short run takes one strike back, so a statement that
    ran long once (a profile of the most prolific person) soon runs inline again."""

    STRIKES = 2
    TRACKED = 512  # statements remembered; forgotten all at once past this (the app has far fewer)

    def __init__(self) -> None:
        self._strikes: dict[str, int] = {}

    def known_long(self, operation: str) -> bool:
        return self._strikes.get(operation, 0) >= self.STRIKES

    def overran(self, operation: str) -> None:
        if len(self._strikes) >= self.TRACKED:
            self._strikes.clear()
        self._strikes[operation] = min(self._strikes.get(operation, 0) + 1, self.STRIKES)

    def ran(self, operation: str, seconds: float) -> None:
        if seconds >= INLINE_BUDGET:  # a write that ran long to its end, or a long read on the thread
            self.overran(operation)
            return
        strikes = self._strikes.get(operation)
        if strikes is not None:
            if strikes > 1:
                self._strikes[operation] = strikes - 1
            else:
                del self._strikes[operation]


LONG_STATEMENTS = _LongStatements()  # per process: a statement's SQL is the same on every connection


_LINES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()


def _lock_line() -> asyncio.Lock:
    """The line of this event loop's writes waiting for SQLite's write lock (an asyncio.Lock serves in order)."""
    loop = asyncio.get_running_loop()
    line = _LINES.get(loop)
    if line is None:
        line = _LINES[loop] = asyncio.Lock()
    return line


def _lock_line_busy() -> bool:
    running = _LINES.get(asyncio.get_running_loop())
    return running is not None and running.locked()


class Connection(aiosqlite.Connection):
    """aiosqlite's connection, with every call first tried on the caller's thread (see the module's doc).

    Never both threads at once: while anything of this connection is queued for or running on the worker
    thread (a statement whose caller was cancelled keeps running there), every call joins that queue behind
    it instead of running inline. `_sent` only grows on the loop's thread, `_finished` only on the worker's."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sent = self._finished = 0

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await self.run(partial(fn, *args, **kwargs))

    async def run(self, fn: Callable[[], T], *, interruptible: bool = False) -> T:
        """`fn` here (behind anything of this connection on the worker thread, there), and again in line if
        another connection holds the write lock. `interruptible` (nothing is lost by interrupting it): past
        INLINE_BUDGET it is interrupted and _Overran raised, for the caller to run it on the thread."""
        if not self._running or not self._connection:
            raise ValueError("Connection closed")
        if self._sent != self._finished:
            return await self.on_thread(fn)
        connection = self._connection
        if interruptible:
            deadline = time.perf_counter() + INLINE_BUDGET
            connection.set_progress_handler(lambda: time.perf_counter() > deadline, _WATCH_EVERY)
        try:
            return fn()
        except sqlite3.OperationalError as error:
            if interruptible and _is_interrupted(error):
                raise _Overran() from error
            if not _is_busy(error):
                raise
        finally:
            if interruptible:
                connection.set_progress_handler(None, 0)
        return await self.wait_for_lock(fn)

    async def wait_for_lock(self, fn: Callable[[], T]) -> T:
        """Another connection holds the write lock: `fn` again from the loop's thread every few milliseconds,
        for up to BUSY_TIMEOUT_MS, in line (first come, first served) with this process's other writes waiting.
        SQLite's own busy handler, on the worker thread, sleeps up to 100 ms between its tries and queues no
        one: under a burst of commands a write tried the moment the lock was free kept taking it ahead of those
        waiting, some of which waited over a second."""
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        async with _lock_line():
            delay = 0.0002
            while True:
                await asyncio.sleep(delay)
                if self._sent != self._finished:
                    return await self.on_thread(fn)
                try:
                    return fn()
                except sqlite3.OperationalError as error:
                    if not _is_busy(error) or time.monotonic() > deadline:
                        raise
                delay = min(2 * delay, 0.004)

    async def on_thread(self, fn: Callable[[], T]) -> T:
        """On aiosqlite's worker thread, waiting for locks as long as BUSY_TIMEOUT_MS."""
        self._sent += 1
        result: T = await super()._execute(self._waiting, fn)  # type: ignore[no-untyped-call]
        return result

    def _waiting(self, fn: Callable[[], T]) -> T:
        try:
            connection = self._conn
            connection.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            try:
                return fn()
            finally:
                connection.execute("PRAGMA busy_timeout=0")
        finally:
            self._finished += 1


class _Cursor(AsyncAdapt_aiosqlite_cursor):
    """SQLAlchemy's cursor over aiosqlite, with the statement and its fetch in one call of `Connection.run`."""

    __slots__ = ()

    async def _execute_async(self, operation: Any, parameters: Any) -> Any:
        connection: Connection = self._connection  # type: ignore[assignment]
        # A statement here never waits, so without this a coroutine would run statement after statement and
        # never let the loop serve anyone else, as each hop to the thread used to. Under a burst (a hundred
        # Discord interactions at once) that held back the timers that acknowledge an interaction in time: the
        # p99 went from 0.21 s to 1.2 s. (Not yielding inside a write transaction was tried: worse, 2 s.)
        await asyncio.sleep(0)
        cursor: sqlite3.Cursor = self._cursor._cursor  # type: ignore[attr-defined]

        took = 0.0

        def statement() -> list[Any] | None:
            nonlocal took
            started = time.perf_counter()
            cursor.execute(operation, () if parameters is None else parameters)
            rows = cursor.fetchall() if cursor.description else None
            took = time.perf_counter() - started
            return rows

        async with self._adapt_connection._execute_mutex:
            if _BACKGROUND.get() or _is_upkeep(operation):
                rows = await connection.on_thread(statement)
            elif LONG_STATEMENTS.known_long(operation):
                rows = await connection.on_thread(statement)
                LONG_STATEMENTS.ran(operation, took)
            elif not _is_select(operation) and not connection.in_transaction and _lock_line_busy():
                rows = await connection.wait_for_lock(statement)  # behind those already waiting for the lock
            elif not _is_select(operation):
                rows = await connection.run(statement)  # never interrupted: see the module's doc
                LONG_STATEMENTS.ran(operation, took)
            else:
                try:
                    rows = await connection.run(statement, interruptible=True)
                    LONG_STATEMENTS.ran(operation, took)
                except _Overran:
                    LONG_STATEMENTS.overran(operation)
                    rows = await connection.on_thread(statement)
            if rows is not None:
                self._rows = collections.deque(rows)
            return self._cursor

    async def _executemany_async(self, operation: Any, seq_of_parameters: Sequence[Any]) -> Any:
        connection: Connection = self._connection  # type: ignore[assignment]
        cursor: sqlite3.Cursor = self._cursor._cursor  # type: ignore[attr-defined]

        def many() -> None:
            cursor.executemany(operation, seq_of_parameters)

        async with self._adapt_connection._execute_mutex:
            await connection.on_thread(many)
            return self._cursor


class _AdaptedConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    _cursor_cls = _Cursor


class DBAPI(AsyncAdapt_aiosqlite_dbapi):
    """The DBAPI module SQLAlchemy's aiosqlite dialect is given (`create_async_engine(module=...)`)."""

    def __init__(self) -> None:
        super().__init__(aiosqlite, sqlite3)

    def connect(self, *arg: Any, **kw: Any) -> _AdaptedConnection:
        database, *rest = arg
        kw.pop("async_creator_fn", None)
        connection = Connection(partial(sqlite3.connect, database, *rest, **kw), iter_chunk_size=64)
        connection._thread.daemon = True  # as SQLAlchemy does for aiosqlite's own: a thread must not hold up exit
        # aiosqlite's Connection is not typed as SQLAlchemy's protocol for asyncio drivers, though it is one.
        return _AdaptedConnection(self, await_(connection))  # type: ignore[arg-type]
