"""One update of a chat at a time, across the deployment, and each update once.

Front-ends of one deployment (Telegram webhooks behind a proxy) may get updates of one chat at the
same time, or one update twice. `ChatTurns.arrival` records the update's id (core.seen) and, for a
new one, holds its chat's turn while the adapter handles it:

- in the process, an asyncio lock per chat, taken before anything is awaited, so updates of one
  chat are handled in the order they arrived (asyncio's locks are first come, first served);
- the turn lasts until the core has answered: the adapter calls `hand_over()` as its replies go
  out, queued for the chat in that order, so a slow send does not hold the chat's next update;
- on PostgreSQL, also a session advisory lock keyed on (platform, chat id), on one connection the
  process keeps for it. Recording the id and trying the lock are one statement, and releasing it is
  a second one (the recording alone used to take a pooled connection and a transaction). When
  another process has the chat, this one waits in PostgreSQL's queue for the lock on a connection of
  its own, so waiters are served in order; an update older than one already handled is still
  handled, never dropped (Telegram sends a chat's updates in order, so that is rare).

On SQLite there is one process (core.roles): the in-process lock is enough, and the recording is
the one statement it always was.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextvars import ContextVar
from typing import Any

from sqlalchemy import Executable, case, exists, false, func, literal, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from core import seen
from core.leases import lock_key
from core.models import SeenUpdate, utcnow

log = logging.getLogger(__name__)

WAIT_SECONDS = 30.0  # for another process's turn on a chat; then the update is handled anyway


CURRENT: ContextVar[Turn | None] = ContextVar("chat_turn", default=None)


class Turn:
    """What an arrival holds for its chat, let go in reverse order at its end, or earlier by `hand_over`."""

    def __init__(self) -> None:
        self._releases: list[Callable[[], Awaitable[None]]] = []

    def then(self, release: Callable[[], Awaitable[None]]) -> None:
        self._releases.append(release)

    async def end(self) -> None:
        while self._releases:
            await self._releases.pop()()


async def hand_over() -> None:
    """The core has answered the update this task handles: let the chat's next update start while
    the replies go out. They are queued for the chat first, so they still leave in order, and a slow
    send (a flood wait, a hung request) does not hold the chat."""
    turn = CURRENT.get()
    if turn is not None:
        await turn.end()


class ChatTurns:
    def __init__(self, engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.engine = engine
        self.sessions = sessions
        self._postgres = engine.dialect.name == "postgresql"
        self._local: dict[str, asyncio.Lock] = {}
        self._users: dict[str, int] = {}  # how many arrivals hold or wait for each local lock
        self._conn: AsyncConnection | None = None
        self._conn_turn = asyncio.Lock()  # one statement at a time on the shared connection

    @contextlib.asynccontextmanager
    async def arrival(self, platform: str, update_id: str, chat_id: str | None) -> AsyncIterator[bool]:
        """True (and the chat's turn, for the body) the first time any process sees this update;
        False for a repeat, which the caller drops."""
        turn = Turn()
        token = CURRENT.set(turn)
        try:
            if chat_id is None or not self._postgres:
                if chat_id is not None:
                    await self._take_local(f"chat:{platform}:{chat_id}", turn)
                yield await seen.first_sighting(self.sessions, platform, update_id)
                return
            name = f"chat:{platform}:{chat_id}"
            await self._take_local(name, turn)
            key = lock_key(name)
            fresh, locked = await self._record_and_try(platform, update_id, key)
            if fresh and locked:
                turn.then(lambda: self._unlock(key))
            elif fresh:
                await self._wait_for(key, name, turn)
            yield fresh
        finally:
            await turn.end()
            CURRENT.reset(token)

    async def _take_local(self, name: str, turn: Turn) -> None:
        # Nothing is awaited before the lock is asked for: arrivals queue in the order they came.
        lock = self._local.setdefault(name, asyncio.Lock())
        self._users[name] = self._users.get(name, 0) + 1
        try:
            await lock.acquire()
        except BaseException:
            self._forget(name)
            raise

        async def release() -> None:
            lock.release()
            self._forget(name)

        turn.then(release)

    def _forget(self, name: str) -> None:
        self._users[name] -= 1
        if not self._users[name]:
            del self._users[name], self._local[name]

    async def _record_and_try(self, platform: str, update_id: str, key: int) -> tuple[bool, bool]:
        recorded = (
            pg_insert(SeenUpdate)
            .values(platform=platform, update_id=update_id, seen_at=utcnow())
            .on_conflict_do_nothing()
            .returning(literal(1))
            .cte("recorded")
        )
        fresh = exists(select(recorded))
        query = select(
            fresh.label("fresh"), case((fresh, func.pg_try_advisory_lock(key)), else_=false()).label("locked")
        )
        row = (await self._execute(query)).mappings().one()
        return bool(row["fresh"]), bool(row["locked"])

    async def _unlock(self, key: int) -> None:
        try:
            await self._execute(select(func.pg_advisory_unlock(key)))
        except Exception:  # the connection is gone, and the lock with it
            log.warning("could not release a chat's turn", exc_info=True)

    async def _execute(self, query: Executable) -> CursorResult[Any]:
        async with self._conn_turn:
            if self._conn is None:
                conn = await self.engine.connect()
                # Autocommit: session locks need no transaction, and an open one would hold back vacuum.
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                self._conn = conn
            try:
                return await self._conn.execute(query)
            except Exception:
                conn, self._conn = self._conn, None
                with contextlib.suppress(Exception):
                    await conn.invalidate()  # its locks died with it; the next statement reconnects
                raise

    async def _wait_for(self, key: int, name: str, turn: Turn) -> None:
        """Another process handles this chat: queue for the lock on a connection of our own."""
        conn = await self.engine.connect()
        try:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await asyncio.wait_for(conn.execute(select(func.pg_advisory_lock(key))), WAIT_SECONDS)
        except TimeoutError:
            log.warning("%s stayed busy for %.0f s; handling the update anyway", name, WAIT_SECONDS)
            await conn.invalidate()  # the abandoned wait may still be granted: let the lock go with it
            return
        except BaseException:
            await conn.invalidate()
            raise

        async def release() -> None:
            try:
                await conn.execute(select(func.pg_advisory_unlock(key)))
                await conn.close()
            except Exception:  # the connection is gone, and the lock with it
                await conn.invalidate()

        turn.then(release)

    async def aclose(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()  # PostgreSQL frees the session's locks with it
