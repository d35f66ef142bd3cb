"""Commands declared reads_only: only SELECTs, and on PostgreSQL outside a transaction (core.readonly);
the person's own row still gets its writes (first contact, the last-seen touch, an ended ban)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, select, update

from core import commands
from core.app import OOPS, Core
from core.commands.registry import Context
from core.db import is_sqlite
from core.models import Identity, Person, Post, utcnow
from core.replies import Reply
from tests.core.test_statement_counts import network
from tests.support import actor

# A typical line for every reads_only command ({post} is one of ann's followees' posts).
LINES = {
    "feed": "/feed",
    "top": "/top",
    "profile": "/profile @author0",
    "post": "/post {post}",
    "lineage": "/lineage {post}",
}


@contextmanager
def watching(core: Core) -> Iterator[list[tuple[str, bool]]]:
    """Each statement sent, and whether its connection was inside a transaction (PostgreSQL only). Asked
    after the statement: the driver sends its BEGIN with a transaction's first statement."""
    seen: list[tuple[str, bool]] = []

    def record(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        driver = conn.connection.driver_connection
        inside = driver.is_in_transaction() if hasattr(driver, "is_in_transaction") else driver.in_transaction
        seen.append((statement, bool(inside)))

    event.listen(core.engine.sync_engine, "after_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(core.engine.sync_engine, "after_cursor_execute", record)


async def some_post(core: Core) -> int:
    async with core.sessions() as session:
        found = await session.scalar(select(Post.id).order_by(Post.id))
    assert found is not None
    return found


def test_the_lines_cover_every_command_declared_reads_only() -> None:
    assert {name for name, c in commands.COMMANDS.items() if c.reads_only} == set(LINES)


@pytest.mark.parametrize("name", sorted(LINES))
async def test_a_reads_only_command_sends_only_selects(quiet: Core, name: str) -> None:
    await network(quiet, authors=2)
    line = LINES[name].format(post=await some_post(quiet))
    ann = actor("ann")
    await quiet.handle(ann, line)  # the last-seen touch, if due, is written here
    with watching(quiet) as seen:
        replies = await quiet.handle(ann, line)
    assert not any(r.error for r in replies), replies
    statements = [s.lstrip().split(None, 1)[0].upper() for s, _ in seen]
    assert statements and set(statements) <= {"SELECT", "WITH"}, seen
    if not is_sqlite(str(quiet.engine.url)):
        assert not any(inside for _, inside in seen), "a reads_only command ran inside a transaction"


async def test_a_command_that_writes_still_runs_in_a_transaction(quiet: Core) -> None:
    await network(quiet, authors=1)
    post = await some_post(quiet)
    with watching(quiet) as seen:
        replies = await quiet.handle(actor("ann"), f"/like {post}")
    assert not any(r.error for r in replies), replies
    if not is_sqlite(str(quiet.engine.url)):
        assert all(inside for _, inside in seen), seen


async def test_a_first_contact_through_a_read_creates_the_person(quiet: Core) -> None:
    replies = await quiet.handle(actor("newcomer"), "/top")
    assert not any(r.error for r in replies), replies
    async with quiet.sessions() as session:
        assert await session.scalar(select(Person.id).where(Person.handle == "newcomer")) is not None


async def test_a_read_records_a_contact_that_is_due(quiet: Core) -> None:
    await quiet.handle(actor("ann"), "/start")
    long_ago = utcnow() - timedelta(hours=1)
    async with quiet.sessions() as session:
        await session.execute(update(Identity).values(last_seen_at=long_ago))
        await session.commit()
    await quiet.handle(actor("ann"), "/feed")
    async with quiet.sessions() as session:
        seen = await session.scalar(select(Identity.last_seen_at))
    assert seen is not None and seen > long_ago + timedelta(minutes=30)


async def test_a_read_lifts_a_ban_that_has_ended(quiet: Core) -> None:
    await quiet.handle(actor("ann"), "/start")
    async with quiet.sessions() as session:
        await session.execute(update(Person).values(banned_until=utcnow() - timedelta(minutes=1)))
        await session.commit()
    replies = await quiet.handle(actor("ann"), "/top")
    assert not any(r.error for r in replies), replies
    async with quiet.sessions() as session:
        assert await session.scalar(select(Person.banned_until)) is None


async def test_a_reads_only_command_that_writes_is_refused_and_writes_nothing(
    quiet: Core, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wrong declaration fails loudly instead of writing outside a transaction."""
    if is_sqlite(str(quiet.engine.url)):
        pytest.skip("SQLite runs every command in a transaction")

    async def scribble(ctx: Context) -> list[Reply]:
        ctx.person.bio = "scribbled"
        await ctx.session.flush()
        return [Reply(text="done")]

    top = commands.COMMANDS["top"]
    monkeypatch.setitem(commands.COMMANDS, "scribble", replace(top, name="scribble", handler=scribble))
    await quiet.handle(actor("ann"), "/start")
    replies = await quiet.handle(actor("ann"), "/scribble")
    assert [r.text for r in replies] == [OOPS]
    async with quiet.sessions() as session:
        assert await session.scalar(select(Person.bio)) == ""
