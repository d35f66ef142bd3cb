"""SQLite's WAL is folded back into the database file by a background task, not inside a command's commit."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from core.app import Core
from core.db import Checkpointer, create_engine, is_sqlite
from tests.support import actor


@pytest.fixture(autouse=True)
def sqlite_only(database_url: str) -> None:
    if not is_sqlite(database_url):
        pytest.skip("PostgreSQL checkpoints on its own, outside the sessions")


async def test_commits_leave_the_checkpoint_to_the_background_until_the_wal_is_large(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            assert await conn.scalar(text("PRAGMA wal_autocheckpoint")) == 10_000  # SQLite's default is 1,000
    finally:
        await engine.dispose()


async def test_the_background_checkpoint_copies_the_log_back(core: Core) -> None:
    assert core.checkpointer.running  # Core.start() runs it
    checkpointer = Checkpointer(core.engine, every=0.02)
    checkpointer.start()
    try:
        for name in ("ann", "bob", "cyd"):
            await core.handle(actor(name), "/start")
        async with asyncio.timeout(5):
            while checkpointer.frames_done == 0:  # noqa: ASYNC110  (polling the task under test)
                await asyncio.sleep(0.02)
    finally:
        await checkpointer.stop()
    assert not checkpointer.running


async def test_closing_the_core_stops_it(core: Core) -> None:
    await core.aclose()
    assert not core.checkpointer.running
