"""Deployment-wide locks for work that one process at a time must do (the scheduler, a platform's
outbox sender).

On PostgreSQL a lock is a session-level advisory lock on a connection of its own, held for as long
as the process lives: when the holder dies, its connection closes and PostgreSQL frees the lock, so
the next attempt by another process takes it over. On SQLite only one process runs (core.roles), so
the lock is always held.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = logging.getLogger(__name__)


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for pg_try_advisory_lock (Python's hash() changes per process)."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)


class DeploymentLock:
    def __init__(self, engine: AsyncEngine, name: str) -> None:
        self.engine = engine
        self.name = name
        self.key = lock_key(name)
        self._single = engine.dialect.name == "sqlite"
        self._conn: AsyncConnection | None = None
        self._turn = asyncio.Lock()

    @property
    def held(self) -> bool:
        return self._single or self._conn is not None

    async def ensure(self) -> bool:
        """True if this process holds the lock now: it checks that a held lock's connection is still
        alive (a lost connection means PostgreSQL freed the lock), or tries to take a free one."""
        if self._single:
            return True
        async with self._turn:
            if self._conn is not None and not await self._alive(self._conn):
                log.warning("lost the %s lock with its database connection", self.name)
                await self._drop()
            if self._conn is None:
                await self._try_take()
            return self._conn is not None

    async def _alive(self, conn: AsyncConnection) -> bool:
        try:
            await conn.execute(text("SELECT 1"))
            return True
        except Exception:
            return False

    async def _try_take(self) -> None:
        conn = await self.engine.connect()
        try:
            # Autocommit: a session lock needs no transaction, and an idle open one would hold back
            # vacuum and may be cut off by idle_in_transaction_session_timeout.
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            taken = await conn.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": self.key})
        except BaseException:
            await conn.close()
            raise
        if taken:
            self._conn = conn
            log.info("this process now holds the %s lock", self.name)
        else:
            await conn.close()

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await conn.invalidate()  # a broken connection must not go back to the pool
            except Exception:
                log.debug("closing the %s lock's connection failed", self.name, exc_info=True)

    async def release(self) -> None:
        if self._single:
            return
        async with self._turn:
            conn, self._conn = self._conn, None
            if conn is None:
                return
            try:
                await conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self.key})
                await conn.close()
            except Exception:  # the connection is gone, and the lock with it
                await conn.invalidate()
