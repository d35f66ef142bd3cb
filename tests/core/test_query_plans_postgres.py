"""PostgreSQL's plan for /top as it runs after a few calls: the generic plan of the prepared statement,
made once for every value of its parameters (asyncpg prepares every statement).

Bound, the page's LIMIT and the visibility constants left that plan guessing: a parallel scan estimated at
a thousand rows, so PostgreSQL planned every /top afresh; and with the cards' joins above the LIMIT their
caches were sized for the whole day's posts. Either cost more than the query (bench/README.md).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import insert, text

from core.app import Core
from core.feed.ranking import hot_score
from core.models import Post, utcnow
from tests.core.test_query_plans import recorded
from tests.databases import TEST_DATABASE_URL
from tests.support import actor

pytestmark = pytest.mark.skipif(
    not TEST_DATABASE_URL, reason="PostgreSQL's planner (SQLite's: tests/core/test_query_plans.py)"
)
DAY_POSTS = 5000  # enough for the planner's estimates to matter


def literal(value: Any) -> str:
    if isinstance(value, datetime):
        return f"'{value.isoformat()}'"
    return repr(value)


async def generic_plan(core: Core, statement: str, parameters: Any) -> list[str]:
    async with core.engine.connect() as conn:
        await conn.execute(text("SET plan_cache_mode = force_generic_plan"))
        await conn.exec_driver_sql(f"PREPARE planned AS {statement}")
        values = ", ".join(literal(v) for v in parameters)
        rows = await conn.exec_driver_sql(f"EXPLAIN EXECUTE planned({values})")
        plan = [row[0] for row in rows]
        await conn.rollback()
    return plan


def estimated_rows(line: str) -> int:
    found = re.search(r"rows=(\d+)", line)
    assert found, line
    return int(found.group(1))


async def test_the_generic_plan_of_top_knows_its_page_and_joins_the_cards_to_the_page_only(quiet: Core) -> None:
    await quiet.handle(actor("ann"), "/start")
    await quiet.handle(actor("bob"), "/start")
    async with quiet.sessions() as session:
        bob = await session.scalar(text("SELECT id FROM people WHERE handle = 'bob'"))
        now = utcnow()
        posts = [
            {
                "author_id": bob, "prompt": f"a fox {n}", "image_path": "x.png", "width": 1024, "height": 1024,
                "seed": n, "backend": "local", "model": "m", "visibility": "public", "like_count": n % 7,
                "remix_count": 0, "hot": hot_score(n % 7, now), "created_at": now,
            }
            for n in range(DAY_POSTS)
        ]  # fmt: skip
        await session.execute(insert(Post), posts)
        await session.commit()
        await session.execute(text("ANALYZE posts"))
        await session.execute(text("ANALYZE people"))
        await session.commit()
    with recorded(quiet, lambda statement: "FROM posts" in statement and "ORDER BY" in statement) as seen:
        replies = await quiet.handle(actor("ann"), "/top")
    assert len(replies) == 5, replies
    [(statement, parameters)] = seen
    plan = await generic_plan(quiet, statement, parameters)
    joined = "\n".join(plan)
    assert "Parallel" not in joined and "Gather" not in joined, joined
    assert estimated_rows(plan[0]) <= 5, joined
    # Every join above the page (the author, the parent and its author) is for the page's rows alone.
    joins = [line for line in plan if "Nested Loop" in line or "Memoize" in line or "Hash Join" in line]
    assert joins and all(estimated_rows(line) <= 5 for line in joins), joined
