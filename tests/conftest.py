"""Test fixtures: a real database (SQLite file, or PostgreSQL from TEST_DATABASE_URL), migrated
once per run and emptied after every test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text

from core.app import Core, bootstrap
from core.config import Settings
from core.db import create_engine, is_sqlite
from core.migrate import upgrade
from core.models import Base
from tests.databases import TEST_DATABASE_URL, create_pg_database, drop_pg_database
from tests.fakes.discord_api import discord_api  # noqa: F401
from tests.fakes.openai_server import fake_openai  # noqa: F401  (fixtures, for every test module)
from tests.fakes.telegram_api import api, bot  # noqa: F401
from tests.processes import own_db  # noqa: F401  (a database for tests that start processes)
from tests.support import Chat


@pytest.fixture(scope="session")
async def database_url(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    if TEST_DATABASE_URL:
        url = await create_pg_database(TEST_DATABASE_URL)
    else:
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
    engine = create_engine(url)
    await upgrade(engine)
    await engine.dispose()
    yield url
    if TEST_DATABASE_URL:
        await drop_pg_database(TEST_DATABASE_URL, url)


async def empty_tables(url: str) -> None:
    engine = create_engine(url)
    async with engine.begin() as conn:
        tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
        if is_sqlite(url):
            for name in tables:
                await conn.execute(text(f"DELETE FROM {name}"))
        else:
            await conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
    await engine.dispose()


@pytest.fixture
def media_dir(tmp_path: Path) -> Path:
    return tmp_path / "media"


@pytest.fixture
def settings(database_url: str, media_dir: Path) -> Settings:
    return Settings(
        _env_file=None,  # a developer's .env must not change what the tests see
        database_url=database_url,
        media_dir=media_dir,
        image_backend="local",
        admins=("admin",),
        prompt_max_chars=200,
        generation_cooldown_seconds=0,
        rate_limit_burst=1000,  # tests drive one person fast; tests/core/test_rate_limit.py sets its own
    )


@pytest.fixture
async def core(settings: Settings, database_url: str) -> AsyncIterator[Core]:
    app = await bootstrap(settings)
    await app.start()
    try:
        yield app
    finally:
        await app.aclose()
        await empty_tables(database_url)


@pytest.fixture
async def quiet(settings: Settings, database_url: str) -> AsyncIterator[Core]:
    """A core without its background workers: every statement sent is the test's own."""
    app = await bootstrap(settings)
    try:
        yield app
    finally:
        await app.aclose()
        await empty_tables(database_url)


@pytest.fixture
def chat(core: Core) -> Chat:
    return Chat(core)
