"""Bring the schema to the newest Alembic revision; called at every start-up.

Each revision runs in a transaction of its own together with its version row, so a process killed
mid-migration leaves the database at the previous revision, never half-way (issue: a kill during the
first start left tables without a version row, and every later start failed)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from core.db import create_engine
from core.leases import lock_key

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def _sqlite_migration_connect(dbapi_connection: Any, _record: Any) -> None:
    # The sqlite3 driver's legacy transaction control commits before every DDL statement; with it off
    # (isolation_level None) the BEGIN emitted below makes DDL transactional, as SQLite supports.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # Batch migrations copy a table and DROP the original; with foreign keys on, that DROP deletes every
    # row referring to it through ON DELETE CASCADE. The pragma is a no-op inside a transaction, so it
    # is set here, before any BEGIN, on a connection that only migrations use.
    cursor.execute("PRAGMA foreign_keys=OFF")
    cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    connection.exec_driver_sql("BEGIN")


def migration_engine(url: str) -> AsyncEngine:
    """An engine for migrations only: on SQLite its connections run DDL in real transactions and
    without foreign keys. The app's own engine keeps the driver's default transaction handling,
    which the generation queue's locking relies on."""
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_migration_connect)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
    return engine


@contextlib.asynccontextmanager
async def _one_at_a_time(migrations: AsyncEngine) -> AsyncIterator[None]:
    """Processes of one deployment started together on PostgreSQL migrate one after another (the
    later ones then find nothing to do): a lock on a connection of its own, outside the migration's."""
    if migrations.dialect.name != "postgresql":
        yield
        return
    async with migrations.connect() as holder:
        await holder.execution_options(isolation_level="AUTOCOMMIT")
        await holder.execute(text("SELECT pg_advisory_lock(:key)"), {"key": lock_key("migrations")})
        try:
            yield
        finally:
            await holder.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": lock_key("migrations")})


def _upgrade(connection: Connection, revision: str) -> None:
    command.upgrade(alembic_config(connection), revision)


def _downgrade(connection: Connection, revision: str) -> None:
    command.downgrade(alembic_config(connection), revision)


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    await _migrate(engine, _upgrade, revision)


async def downgrade(engine: AsyncEngine, revision: str) -> None:
    await _migrate(engine, _downgrade, revision)


async def _migrate(engine: AsyncEngine, step: Callable[[Connection, str], None], revision: str) -> None:
    migrations = migration_engine(engine.url.render_as_string(hide_password=False))
    try:
        async with _one_at_a_time(migrations), migrations.connect() as connection:
            # No statement before this: Alembic must find the connection outside a transaction, so that
            # it opens one per revision (transaction_per_migration in env.py).
            await connection.run_sync(step, revision)
    finally:
        await migrations.dispose()
