"""Upgrading a SQLite database that holds data keeps every row (batch migrations rebuild tables)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from core.db import create_engine
from core.migrate import upgrade

WHEN = "'2026-01-01 00:00:00.000000'"
ROWS = (
    f"INSERT INTO people (id, handle, display_name, bio, created_at) VALUES (1, 'ada', 'Ada', '', {WHEN}),"
    f" (2, 'alan', 'Alan', '', {WHEN})",
    "INSERT INTO identities (id, person_id, platform, platform_user_id, unreachable, last_seen_at)"
    f" VALUES (1, 1, 'console', 'ada', 0, {WHEN})",
    f"INSERT INTO follows (follower_id, followee_id, created_at) VALUES (2, 1, {WHEN})",
    "INSERT INTO posts (id, author_id, prompt, image_path, width, height, seed, backend, model, visibility,"
    f" like_count, remix_count, hot, created_at) VALUES (1, 1, 'fox', 'a/b.png', 1, 1, 1, 'local', 'm', 'public',"
    f" 1, 0, 0.0, {WHEN})",
    f"INSERT INTO likes (post_id, person_id, created_at) VALUES (1, 2, {WHEN})",
)
TABLES = ("people", "identities", "follows", "posts", "likes")


async def _counts(engine: AsyncEngine) -> dict[str, int]:
    async with engine.connect() as conn:
        return {table: await conn.scalar(text(f"SELECT count(*) FROM {table}")) for table in TABLES}


async def test_upgrading_from_the_first_revision_keeps_every_row_and_foreign_keys_on(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'old.db'}")
    try:
        await upgrade(engine, "0001")
        async with engine.begin() as conn:
            for statement in ROWS:
                await conn.execute(text(statement))
        before = await _counts(engine)
        await upgrade(engine, "head")
        assert await _counts(engine) == before == {"people": 2, "identities": 1, "follows": 1, "posts": 1, "likes": 1}
        async with engine.begin() as conn:  # the pooled connection has its foreign keys back
            assert await conn.scalar(text("PRAGMA foreign_keys")) == 1
            await conn.execute(text("DELETE FROM people WHERE id = 2"))
        after = await _counts(engine)
        assert (after["follows"], after["likes"]) == (0, 0)  # cascaded
    finally:
        await engine.dispose()
