"""Alembic migrations from an empty database, on SQLite and (with TEST_DATABASE_URL) PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from core.db import create_engine
from core.migrate import downgrade, upgrade
from core.models import Base
from tests.databases import fresh_database


@pytest.fixture
async def empty_url(tmp_path: Path) -> AsyncIterator[str]:
    """A brand-new, empty database of its own (not the suite's shared one)."""
    async with fresh_database(tmp_path) as url:
        yield url


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names()) - {"alembic_version"}


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return compare_metadata(context, Base.metadata)


def _version(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def test_upgrade_from_empty_creates_every_table_and_matches_the_models(empty_url: str) -> None:
    engine = create_engine(empty_url)
    try:
        async with engine.connect() as conn:
            assert await conn.run_sync(_tables) == set()
        await upgrade(engine)
        async with engine.connect() as conn:
            assert await conn.run_sync(_tables) == set(Base.metadata.tables)
            assert await conn.run_sync(_differences) == []
            assert await conn.run_sync(_version) is not None
        await upgrade(engine)  # a second start-up is a no-op
    finally:
        await engine.dispose()


async def test_downgrade_to_base_and_upgrade_again(empty_url: str) -> None:
    engine = create_engine(empty_url)
    try:
        await upgrade(engine)
        async with engine.connect() as conn:
            head = await conn.run_sync(_version)
        await downgrade(engine, "base")
        async with engine.connect() as conn:
            assert await conn.run_sync(_tables) == set()
            assert await conn.run_sync(_version) is None
        await upgrade(engine)
        async with engine.connect() as conn:
            assert await conn.run_sync(_tables) == set(Base.metadata.tables)
            assert await conn.run_sync(_differences) == []
            assert await conn.run_sync(_version) == head
    finally:
        await engine.dispose()


async def test_each_revision_steps_down_and_up(empty_url: str) -> None:
    """Every single downgrade works from a populated schema, not only the full one."""
    from alembic.script import ScriptDirectory

    from core.migrate import alembic_config

    revisions = [r.revision for r in ScriptDirectory.from_config(alembic_config()).walk_revisions()]  # head first
    engine = create_engine(empty_url)
    try:
        await upgrade(engine)
        for index, revision in enumerate(revisions):
            below = revisions[index + 1] if index + 1 < len(revisions) else "base"
            await downgrade(engine, below)
            async with engine.connect() as conn:
                assert await conn.run_sync(_version) == (None if below == "base" else below), revision
        await upgrade(engine)
        async with engine.connect() as conn:
            assert await conn.run_sync(_differences) == []
    finally:
        await engine.dispose()


async def test_foreign_keys_are_enforced(empty_url: str) -> None:
    """SQLite ignores foreign keys unless asked; the engine turns them on (remix parents rely on it)."""
    engine = create_engine(empty_url)
    try:
        await upgrade(engine)
        async with engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar() == 1
            with pytest.raises(Exception, match=r"(?i)foreign key"):
                await conn.execute(
                    text(
                        "INSERT INTO likes (post_id, person_id, created_at) VALUES (424242, 424242, CURRENT_TIMESTAMP)"
                    )
                )
    finally:
        await engine.dispose()
