"""Alembic environment: async engine, batch mode for SQLite, connection sharing for start-up."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from core.config import load_settings
from core.db import create_engine
from core.models import Base

target_metadata = Base.metadata


def do_run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_async_migrations() -> None:
    engine = create_engine(load_settings().database_url)
    async with engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            # As in core.migrate: a batch migration's DROP TABLE must not cascade (the engine is thrown away after).
            await connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        await connection.run_sync(do_run_migrations)
        await connection.commit()
    await engine.dispose()


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        # core.migrate hands us a connection from the running app's event loop.
        do_run_migrations(connection)
    else:
        asyncio.run(run_async_migrations())


if context.is_offline_mode():
    raise SystemExit("offline SQL generation is not supported; run against a database")
run_migrations_online()
