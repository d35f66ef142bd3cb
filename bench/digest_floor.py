"""The digest's floor: the composition queries alone, sent straight through the driver on the same database.

While `compose_pass` runs, every SELECT it sends is recorded at the driver's cursor (the SQL text and
its parameters, as SQLAlchemy hands them over). Right after, the same statements run again through
Python's `sqlite3` (no worker thread, no SQLAlchemy) or one asyncpg connection, in one transaction
that first empties the outbox and is rolled back at the end: each chunk's query for people without
today's digest then finds them as the pass did, and nothing the pass wrote is lost. The writes (one
multi-row insert per chunk) are not part of the floor; what the pass takes beyond it is ours:
SQLAlchemy, aiosqlite's thread hops, building the rows in Python, and those inserts.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

Statement = tuple[str, Sequence[Any]]


@dataclass(frozen=True, slots=True)
class Floor:
    statements: int
    seconds: float


@contextmanager
def recording(engine: AsyncEngine) -> Iterator[list[Statement]]:
    """The SELECTs sent on `engine` meanwhile, in order."""
    seen: list[Statement] = []

    def keep(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, many: bool) -> None:
        if not many and statement.lstrip().upper().startswith(("SELECT", "WITH")):
            seen.append((statement, tuple(parameters or ())))

    event.listen(engine.sync_engine, "before_cursor_execute", keep)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", keep)


async def replay(url: str, statements: list[Statement]) -> Floor:
    """Time `statements` (fetching every row) through the driver, on an empty outbox, changing nothing."""
    if make_url(url).get_backend_name() == "sqlite":
        return _replay_sqlite(make_url(url).database or "", statements)
    return await _replay_postgres(url, statements)


def _replay_sqlite(path: str, statements: list[Statement]) -> Floor:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN")
        conn.execute("DELETE FROM deliveries")
        started = time.perf_counter()
        for sql, parameters in statements:
            conn.execute(sql, parameters).fetchall()
        seconds = time.perf_counter() - started
        conn.execute("ROLLBACK")
    finally:
        conn.close()
    return Floor(len(statements), seconds)


async def _replay_postgres(url: str, statements: list[Statement]) -> Floor:
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn)
    try:
        transaction = conn.transaction()
        await transaction.start()
        await conn.execute("DELETE FROM deliveries")
        started = time.perf_counter()
        for sql, parameters in statements:
            await conn.fetch(sql, *parameters)
        seconds = time.perf_counter() - started
        await transaction.rollback()
    finally:
        await conn.close()
    return Floor(len(statements), seconds)
