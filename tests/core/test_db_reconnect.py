"""PostgreSQL connections cut under the pool (a server restart, a firewall dropping idle connections):
the next command gets a new connection instead of an error."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from core.app import OOPS, bootstrap
from core.config import Settings
from core.db import create_engine
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


async def test_a_command_after_the_server_cut_the_pooled_connections_is_answered(settings: Settings) -> None:
    core = await bootstrap(settings)
    try:
        alice = actor("alice")
        await core.handle(alice, "/start")
        assert await cut_connections(str(make_url(settings.database_url).database)) >= 1
        for line in ("/profile", "/top", "/bio cut and back"):  # each checks a connection out of the pool
            replies = await core.handle(alice, line)
            assert not any(r.error for r in replies) and OOPS not in replies[0].text, (line, replies)
    finally:
        await core.aclose()
