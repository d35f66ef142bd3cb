"""SQLite's plans for the hot read paths, as the commands issue them (EXPLAIN QUERY PLAN).

On the benchmark's network a wrong plan costs more than all of our code: /top answered through
ix_posts_created_at sorts the day's ~33k posts, and a feed that reads each candidate post's row
before sorting takes 7 ms for someone following 415 busy people (bench/README.md).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import make_url

from core.app import Core
from core.feed.digest import compose_pass
from core.models import utcnow
from tests.core.test_statement_counts import network
from tests.databases import TEST_DATABASE_URL
from tests.support import actor

pytestmark = pytest.mark.skipif(
    bool(TEST_DATABASE_URL), reason="SQLite's planner; PostgreSQL's: tests/core/test_query_plans_postgres.py"
)


async def plans_of(core: Core, line: str, table_hint: str) -> list[str]:
    """The plan of each statement of `line` that orders posts, one string per statement."""
    with recorded(core, lambda statement: table_hint in statement and "ORDER BY" in statement) as seen:
        replies = await core.handle(actor("ann"), line)
    assert not any(r.error for r in replies), [r.text for r in replies]
    return explained(core, seen)


@contextmanager
def recorded(core: Core, wanted: Callable[[str], bool]) -> Iterator[list[tuple[str, Any]]]:
    seen: list[tuple[str, Any]] = []

    def keep(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_args: Any) -> None:
        if wanted(statement):
            seen.append((statement, parameters))

    event.listen(core.engine.sync_engine, "before_cursor_execute", keep)
    try:
        yield seen
    finally:
        event.remove(core.engine.sync_engine, "before_cursor_execute", keep)


def explained(core: Core, seen: list[tuple[str, Any]]) -> list[str]:
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
        "SEARCH posts USING COVERING INDEX ix_posts_author_shown_id_hot (author_id=? AND visibility=? AND status=?)"
        in plan
    ), plan
    assert "ix_posts_author_id_id" not in plan, plan


async def test_the_digest_ranks_each_followed_authors_day_from_the_index_alone(quiet: Core) -> None:
    """The digest's windowed query ranks every followed author's posts of the day by hot score: reading each
    candidate's row for `hot` and `created_at` made it 5x slower (bench/DIGEST.md)."""
    await network(quiet, authors=2)
    with recorded(quiet, lambda statement: "row_number()" in statement) as seen:
        stats = await compose_pass(quiet.sessions, quiet.settings, utcnow(), force=True)
    assert stats.queued >= 1
    [plan] = explained(quiet, seen)
    assert (
        "SEARCH posts USING COVERING INDEX ix_posts_author_shown_id_hot (author_id=? AND visibility=? AND status=? "
        "AND id>?)" in plan
    ), plan


async def test_the_digest_finds_the_days_first_post_once_per_pass_through_the_time_index(quiet: Core) -> None:
    """A bare min(id) walked the table in id order until a post was recent enough (half of it over two days),
    and it ran for every chunk of every (zone, hour) group of the pass."""
    await network(quiet, authors=2)
    with recorded(quiet, lambda statement: "min(" in statement and "FROM posts" in statement) as seen:
        await compose_pass(quiet.sessions, quiet.settings, utcnow(), force=True)
    [plan] = explained(quiet, seen)
    assert plan == "SEARCH posts USING COVERING INDEX ix_posts_created_at (created_at>?)", plan
