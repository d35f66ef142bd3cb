"""A process killed (SIGKILL) anywhere inside a migration leaves a database the next start-up brings
to head, with every row kept: each revision commits as a whole with its version row."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import text

from core.db import create_engine
from core.migrate import alembic_config, upgrade
from tests.core.test_migrations import _differences, _version
from tests.databases import fresh_database

ROOT = Path(__file__).resolve().parents[2]
WHEN = "'2026-01-01 00:00:00'"
ROWS = (
    f"INSERT INTO people (id, handle, display_name, bio, created_at) VALUES (1, 'ada', 'Ada', '', {WHEN}),"
    f" (2, 'alan', 'Alan', '', {WHEN})",
    "INSERT INTO identities (id, person_id, platform, platform_user_id, unreachable, last_seen_at)"
    f" VALUES (1, 1, 'console', 'ada', false, {WHEN})",
    f"INSERT INTO follows (follower_id, followee_id, created_at) VALUES (2, 1, {WHEN})",
    "INSERT INTO posts (id, author_id, prompt, image_path, width, height, seed, backend, model, visibility,"
    f" like_count, remix_count, hot, created_at) VALUES (1, 1, 'fox', 'a/b.png', 1, 1, 1, 'local', 'm', 'public',"
    f" 1, 0, 0.0, {WHEN})",
    f"INSERT INTO likes (post_id, person_id, created_at) VALUES (1, 2, {WHEN})",
)
COUNTS = {"people": 2, "identities": 1, "follows": 1, "posts": 1, "likes": 1}
WRITES = re.compile(r"^(CREATE|ALTER|DROP|INSERT|UPDATE|DELETE)\b", re.IGNORECASE)
SCRIPTS = ScriptDirectory.from_config(alembic_config())
HEAD = SCRIPTS.get_current_head()
REVISIONS = len(list(SCRIPTS.walk_revisions()))
VERSION_ROW = re.compile(r"^(INSERT INTO|UPDATE) alembic_version\b", re.IGNORECASE)


class DyingMigrations:
    """One `tests.fakes.dying_migration` process for a test: each request forks a child that
    migrates a database and is SIGKILLed after a chosen statement."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    async def run(self, url: str, kill_after: int) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(f"{url} {kill_after}\n".encode())
        await self.process.stdin.drain()
        line = await asyncio.wait_for(self.process.stdout.readline(), timeout=120)
        assert line, "the dying-migration process ended"
        result: dict[str, Any] = json.loads(line)
        return result


@pytest.fixture
async def dying() -> AsyncIterator[DyingMigrations]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.fakes.dying_migration",
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        yield DyingMigrations(process)
    finally:
        assert process.stdin is not None
        process.stdin.close()
        await asyncio.wait_for(process.wait(), timeout=30)


def kill_points(statements: list[str]) -> list[int]:
    """For every revision: after its first write, after one in the middle, and after its version row
    (the last statement before its COMMIT). Statement numbers count from 1."""
    points: list[int] = []
    writes: list[int] = []
    for number, statement in enumerate(statements, start=1):
        if WRITES.match(statement):
            writes.append(number)
        if VERSION_ROW.match(statement):
            points += sorted({writes[0], writes[len(writes) // 2], number})
            writes = []
    return points


async def add_rows(url: str) -> None:
    engine = create_engine(url)
    try:
        await upgrade(engine, "0001")
        async with engine.begin() as conn:
            for statement in ROWS:
                await conn.execute(text(statement))
    finally:
        await engine.dispose()


async def start_up_and_check(url: str, with_rows: bool, where: str) -> None:
    engine = create_engine(url)
    try:
        await upgrade(engine)  # what the next start-up does
        async with engine.connect() as conn:
            assert await conn.run_sync(_version) == HEAD, where
            assert await conn.run_sync(_differences) == [], where
            if with_rows:
                counts = {table: await conn.scalar(text(f"SELECT count(*) FROM {table}")) for table in COUNTS}
                assert counts == COUNTS, where
    finally:
        await engine.dispose()


async def no_setup(_url: str) -> None:
    return None


@pytest.mark.parametrize(("setup", "with_rows"), [(no_setup, False), (add_rows, True)], ids=["empty", "with-data"])
async def test_a_kill_at_any_migration_step_never_bricks_the_database(
    tmp_path: Path, dying: DyingMigrations, setup: Callable[[str], object], with_rows: bool
) -> None:
    async with fresh_database(tmp_path) as url:
        await setup(url)  # type: ignore[misc]
        dry = await dying.run(url, 0)
        assert dry["returncode"] == 0
    statements = dry["statements"]
    points = kill_points(statements)
    # Every revision was seen: each ends with its version row, and has a write before it (a revision
    # with a single write has two kill points, its first write and its version row, not three).
    revisions = REVISIONS - 1 if with_rows else REVISIONS  # with data, 0001 ran before the process
    assert sum(1 for statement in statements if VERSION_ROW.match(statement)) == revisions
    assert len(points) >= 2 * revisions
    for point in points:
        async with fresh_database(tmp_path) as url:
            await setup(url)  # type: ignore[misc]
            killed = await dying.run(url, point)
            assert killed["returncode"] == -signal.SIGKILL, f"not killed after statement {point}"
            await start_up_and_check(url, with_rows, f"killed after statement {point}")
