"""Throwaway databases for tests: a SQLite file, or a PostgreSQL database of its own on the server
TEST_DATABASE_URL names, so parallel runs and test processes on one server never meet."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url

from core.db import create_engine

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")


async def create_pg_database(url: str) -> str:
    """A new database on the server `url` names; its URL."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    await admin.dispose()
    return make_url(url).set(database=name).render_as_string(hide_password=False)


async def drop_pg_database(url: str, scratch: str) -> None:
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(scratch).database}" WITH (FORCE)'))
    await admin.dispose()


@asynccontextmanager
async def fresh_database(tmp_path: Path) -> AsyncIterator[str]:
    """A brand-new empty database of its own (not the suite's shared one), dropped afterwards."""
    if not TEST_DATABASE_URL:
        yield f"sqlite+aiosqlite:///{tmp_path / uuid.uuid4().hex[:12]}.db"
        return
    url = await create_pg_database(TEST_DATABASE_URL)
    try:
        yield url
    finally:
        await drop_pg_database(TEST_DATABASE_URL, url)
