"""How many SQL statements each command sends to the database, counted at the driver's cursor.

Every statement is a round trip (on aiosqlite, a hop to its worker thread and back), and on the
benchmark's network that fixed cost, not the database's work, is most of a command's time
(bench/README.md). An N+1 (a query per card) or an extra lookup shows up here, in CI, instead of
in the next benchmark run. When a command legitimately needs one more statement, change its number
here and say why in the commit.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event, insert, select

from core.app import Core
from core.db import is_sqlite
from core.feed.ranking import hot_score
from core.models import Follow, GenerationJob, Post, utcnow
from tests.conftest import empty_tables
from tests.core.test_sqlite_inline import on_thread
from tests.support import actor

POSTS_EACH = 7  # more than a page (5), so the feed has an Older button


@contextmanager
def counting(core: Core) -> Iterator[list[str]]:
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(core.engine.sync_engine, "before_cursor_execute", seen)
    try:
        yield statements
    finally:
        event.remove(core.engine.sync_engine, "before_cursor_execute", seen)


async def network(core: Core, authors: int, posts_each: int = POSTS_EACH) -> None:
    """ann follows `authors` people, each with `posts_each` public posts."""
    for name in ("ann", *(f"author{i}" for i in range(authors))):
        await core.handle(actor(name), "/start")
    async with core.sessions() as session:
        rows = (await session.execute(Post.metadata.tables["people"].select())).all()
        ids = {row.handle: row.id for row in rows}
        now = utcnow()
        posts = [
            {
                "author_id": ids[f"author{i}"], "prompt": f"a fox {i}.{n}", "image_path": "x.png", "width": 1024,
                "height": 1024, "seed": n, "backend": "local", "model": "m", "visibility": "public",
                "like_count": 0, "remix_count": 0, "hot": hot_score(0, now), "created_at": now,
            }
            for n in range(posts_each)
            for i in range(authors)
        ]  # fmt: skip
        await session.execute(insert(Post), posts)
        follows = [{"follower_id": ids["ann"], "followee_id": ids[f"author{i}"]} for i in range(authors)]
        await session.execute(insert(Follow), follows)
        await session.commit()


async def statements_of(core: Core, call: str) -> int:
    """Statements one call issues; `call` is "/line" typed or "action" pressed, by ann."""
    with counting(core) as seen:
        if call.startswith("/"):
            replies = await core.handle(actor("ann"), call)
        else:
            replies = await core.press(actor("ann"), call)
    assert not any(r.error for r in replies), [r.text for r in replies]
    return len(seen)


# Statements per call: the person and their identity (one), then the command's own. The cards' handles
# come in the statement that reads the posts (core.cards.with_card_data), and a block check in the
# statement that reads the post or person it is about (core.visibility.block_between). So /feed is the
# page; a like reads the post, writes the like, the count with its hot score (one), and a notification.
EXPECTED = {
    "/feed": 2,
    "feed before {older}": 2,
    "/profile @author0": 3,  # the person, the other person with the counts and platforms (one), the latest posts
    "/top": 2,
    "like {post}": 5,
    "/unfollow author1": 4,
    "follow author1": 4,
    "/post {post}": 3,  # +1: the latest comments
}


async def counts(core: Core) -> dict[str, int]:
    async with core.sessions() as session:
        newest = (await session.execute(Post.__table__.select().order_by(Post.id.desc()))).first()
    assert newest is not None
    post, older = newest.id, newest.id - 4
    found = {}
    for call in EXPECTED:
        found[call] = await statements_of(core, call.format(post=post, older=older))
    return found


async def test_each_command_issues_a_fixed_number_of_statements(quiet: Core) -> None:
    await network(quiet, authors=3)
    await statements_of(quiet, "/feed")  # the first call after start-up may warm caches
    assert await counts(quiet) == EXPECTED


async def test_the_number_does_not_grow_with_the_cards_on_the_page(quiet: Core) -> None:
    """One card from one author or five from five authors: the same statements (no query per card)."""
    await network(quiet, authors=1, posts_each=1)
    with_one = [await statements_of(quiet, call) for call in ("/feed", "/top")]
    await empty_tables(quiet.settings.database_url)
    await network(quiet, authors=5)
    assert [await statements_of(quiet, call) for call in ("/feed", "/top")] == with_one


async def test_a_command_on_an_idle_database_never_waits_for_aiosqlites_thread(quiet: Core) -> None:
    """Nothing holds a lock and every statement is short: all of them run on the event loop's thread
    (core.sqlite_inline), a read and a write alike, the commit included."""
    if not is_sqlite(quiet.settings.database_url):
        pytest.skip("aiosqlite's worker thread")
    await network(quiet, authors=3)
    for call in ("/feed", "follow author1", "like 1", "/profile author2"):
        with on_thread() as hops:
            await statements_of(quiet, call)
        assert hops == [], (call, hops)


# An image request and its job, in statements. /imagine: the person, the job's INSERT (a repeated request
# finds its job by the conflict), the person's turn (the cooldown and, on SQLite, the quota count in the same
# UPDATE; PostgreSQL counts after the row lock, in a statement of its own); its place in line comes back in
# the INSERT's RETURNING. A worker's
# claim: the take (on SQLite one UPDATE that picks the job and returns its author's handle; on PostgreSQL the
# candidate and its person's row locked under SKIP LOCKED, then the take with their running jobs counted in its
# WHERE), then the first few in
# line, whose progress messages show their new place. The completion: the author through the job's row,
# the post, the job marked done, the result's delivery (on PostgreSQL the post's id from its sequence first);
# on SQLite, where completions are written together (core.gen.together), the worker's next claim too, in the
# same transaction (here it finds nothing, and the worker would claim as usual).
PIPELINE = {
    "sqlite": {"/imagine": 3, "claim": 2, "completion": 5},
    "postgresql": {"/imagine": 4, "claim": 3, "completion": 5},
}


async def test_an_image_request_and_its_job_issue_a_fixed_number_of_statements(quiet: Core) -> None:
    await quiet.handle(actor("ann"), "/start")
    await quiet.queue._reserve_post_id()  # SQLite counts post ids in the process from the highest stored, once
    found = {}
    with counting(quiet) as seen:
        [reply] = await quiet.handle(actor("ann"), "/imagine a fox in the snow --seed 3")
    assert reply.job_id is not None, reply.text
    found["/imagine"] = len(seen)
    with counting(quiet) as seen:
        claimed = await quiet.queue._claim_with_author()
    assert claimed is not None and claimed[1] == "ann"
    found["claim"] = len(seen)
    with counting(quiet) as seen:
        await quiet.queue._process(*claimed)  # the backend, the file, then the completion's statements
    found["completion"] = len(seen)
    async with quiet.sessions() as session:
        assert await session.scalar(select(GenerationJob.status).where(GenerationJob.id == claimed[0].id)) == "done"
    assert found == PIPELINE[quiet.engine.dialect.name]
