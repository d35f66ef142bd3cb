"""SQLite's plans for the hot read paths, as the commands issue them (EXPLAIN QUERY PLAN).

On the benchmark's network a wrong plan costs more than all of our code: /top answered through
ix_posts_created_at sorts the day's ~33k posts, and a feed that reads each candidate post's row
before sorting takes 7 ms for someone following 415 busy people (bench/README.md).
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import make_url

from core.app import Core, bootstrap
from core.config import Settings
from core.db import is_sqlite
from tests.conftest import empty_tables
from tests.support import actor


@pytest.fixture
async def quiet(settings: Settings, database_url: str) -> AsyncIterator[Core]:
    if not is_sqlite(database_url):
        pytest.skip("SQLite's planner; PostgreSQL's feed plan is the LATERAL join (core/feed/timeline.py)")
    app = await bootstrap(settings)
    try:
        yield app
    finally:
        await app.aclose()
        await empty_tables(database_url)


async def plans_of(core: Core, line: str, table_hint: str) -> list[str]:
    """The plan of each statement of `line` that orders posts, one string per statement."""
    seen: list[tuple[str, Any]] = []

    def keep(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_args: Any) -> None:
        if table_hint in statement and "ORDER BY" in statement:
            seen.append((statement, parameters))

    event.listen(core.engine.sync_engine, "before_cursor_execute", keep)
    try:
        replies = await core.handle(actor("ann"), line)
    finally:
        event.remove(core.engine.sync_engine, "before_cursor_execute", keep)
    assert not any(r.error for r in replies), [r.text for r in replies]
    raw = sqlite3.connect(make_url(core.settings.database_url).database or "")
    try:
        return [" | ".join(row[3] for row in raw.execute(f"EXPLAIN QUERY PLAN {s}", p)) for s, p in seen]
    finally:
        raw.close()


async def test_top_walks_the_hot_index_down_from_the_top(quiet: Core) -> None:
    [plan] = await plans_of(quiet, "/top", "FROM posts")
    assert "SEARCH posts USING INDEX ix_posts_hot (hot>?)" in plan and "TEMP B-TREE" not in plan, plan


async def test_the_feed_sorts_post_ids_from_the_index_alone(quiet: Core) -> None:
    await quiet.handle(actor("bob"), "/start")
    await quiet.handle(actor("ann"), "/follow bob")
    [plan] = await plans_of(quiet, "/feed", "JOIN follows")
    # Only the page's rows are read (by primary key); the walk over candidates never touches a row.
    assert "SEARCH posts USING INTEGER PRIMARY KEY (rowid=?)" in plan, plan
    assert (
        "SEARCH posts USING COVERING INDEX ix_posts_author_shown_id (author_id=? AND visibility=? AND status=?)" in plan
    ), plan
    assert "ix_posts_author_id_id" not in plan, plan
