"""PostgreSQL connections cut under the pool (a server restart, a firewall dropping idle connections):
the next command gets a new connection instead of an error."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from core.app import OOPS, Core
from core.db import PING_AFTER_IDLE_SECONDS, create_engine
from tests.databases import TEST_DATABASE_URL
from tests.support import actor

pytestmark = pytest.mark.skipif(not TEST_DATABASE_URL, reason="PostgreSQL only: set TEST_DATABASE_URL")


async def cut_connections(database: str) -> int:
    """Every other session on `database` ended by the server, as a restart does; how many."""
    assert TEST_DATABASE_URL
    admin = create_engine(TEST_DATABASE_URL, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            cut = await conn.scalar(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE datname = :db AND pid <> pg_backend_pid()"
                ),
                {"db": database},
            )
    finally:
        await admin.dispose()
    return int(cut or 0)


def database_of(core: Core) -> str:
    return str(make_url(core.settings.database_url).database)


async def test_a_command_after_the_server_cut_the_pooled_connections_is_answered(quiet: Core) -> None:
    alice = actor("alice")
    await quiet.handle(alice, "/start")
    assert await cut_connections(database_of(quiet)) >= 1
    await asyncio.sleep(PING_AFTER_IDLE_SECONDS + 0.1)  # a connection idle this long is pinged first
    for line in ("/profile", "/top", "/bio cut and back"):  # each checks a connection out of the pool
        replies = await quiet.handle(alice, line)
        assert not any(r.error for r in replies) and OOPS not in replies[0].text, (line, replies)


async def test_a_connection_cut_right_after_use_fails_one_command_at_most(quiet: Core) -> None:
    """Inside the window no ping is sent: the one command that meets the cut connection says sorry,
    saves nothing, and the pool drops its connections, so the next command gets a new one."""
    alice = actor("alice")
    await quiet.handle(alice, "/start")
    assert await cut_connections(database_of(quiet)) >= 1
    answers = [await quiet.handle(alice, line) for line in ("/bio lost", "/bio kept", "/top")]
    failed = [replies for replies in answers if OOPS in replies[0].text]
    assert len(failed) <= 1 and OOPS not in answers[-1][0].text, answers
    profile = await quiet.handle(alice, "/profile")
    assert "kept" in profile[0].text
