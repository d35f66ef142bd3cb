"""PostgreSQL: the UPDATEs of several jobs (the lease renewer's, a batch's completion, the stop's give-back, a
merge's move, a ban's cancel) lock their rows in one order, ascending id, so two of them at once wait for each
other.

An UPDATE locks rows in the order its plan visits them; a seq scan visits them in physical order, which an
update of a row changes (its new version is written elsewhere). Here the lowest job's row is updated, so a
scan visits it last; another transaction holds it and waits for the next one, as a statement locking in
ascending id does. A statement locking in physical order would hold that next row and wait for the lowest:
a deadlock, which PostgreSQL breaks by aborting one of the two.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import TextClause, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from core import bans
from core.app import Core
from core.db import on_postgres
from core.feed.ranking import hot_score
from core.gen import together
from core.merging import merge_people
from core.models import GenerationJob, Person, Post, utcnow
from tests.databases import TEST_DATABASE_URL
from tests.support import actor

pytestmark = pytest.mark.skipif(not TEST_DATABASE_URL, reason="PostgreSQL's row locks (SQLite has one writer)")

JOBS = 4
WAIT = 5.0  # seconds anything here may wait for a lock: a hang fails fast (PostgreSQL's deadlock_timeout is 1 s)


async def jobs_of(core: Core, handle: str, **values: object) -> list[int]:
    """JOBS jobs of `handle`'s, the lowest id's row stored last (an update gave it a new version)."""
    await core.handle(actor(handle), "/start")
    async with core.sessions() as session:
        person = await session.scalar(select(Person.id).where(Person.handle == handle))
        rows = [
            {"idempotency_key": f"lock-order-{n}", "person_id": person, "prompt": f"a fox {n}", "seed": n, **values}
            for n in range(JOBS)
        ]
        jobs = sorted(await session.scalars(insert(GenerationJob).returning(GenerationJob.id), rows))
        await session.commit()
        await session.execute(update(GenerationJob).where(GenerationJob.id == jobs[0]).values(aspect="16:9"))
        await session.commit()
        physical = list(await session.scalars(text("SELECT id FROM generation_jobs ORDER BY ctid")))
    async with core.engine.connect() as conn:
        # As autovacuum would: the planner then knows the table is one page and scans it in physical order.
        await conn.execute(text("ANALYZE generation_jobs"))
        await conn.commit()
    assert physical == [*jobs[1:], jobs[0]]  # what a seq scan visits: not ascending
    return jobs


async def running_jobs(core: Core, lease_until: datetime, handle: str = "ann") -> list[int]:
    """JOBS jobs this queue runs."""
    worker = core.queue.worker_id
    return await jobs_of(core, handle, status="running", worker=worker, lease_until=lease_until, attempts=1)


def lock(job: int) -> TextClause:
    return text("SELECT id FROM generation_jobs WHERE id = :job FOR UPDATE").bindparams(job=job)


async def waiting_for_a_lock(conn: AsyncConnection) -> None:
    async with asyncio.timeout(WAIT):
        while True:
            waiting = await conn.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            )
            await conn.rollback()  # a new transaction, a new look at pg_stat_activity
            if waiting:
                return
            await asyncio.sleep(0.01)


Statement = Callable[[], Coroutine[Any, Any, object]]


async def interleaved(core: Core, jobs: list[int], statement: Statement, then: TextClause | None = None) -> None:
    """Another transaction holds the lowest job (and writes it); `statement` starts and waits for it; the other
    transaction then locks `then`, by default the next job, as a statement locking in ascending id does, and
    commits."""
    task: asyncio.Task[object] | None = None
    try:
        async with core.engine.connect() as other, core.engine.connect() as watcher:
            await other.execute(text(f"SET LOCAL lock_timeout = '{int(WAIT)}s'"))
            await other.execute(lock(jobs[0]))
            # A new version of the row it waits for, which the statement then finds still matching.
            await other.execute(
                text("UPDATE generation_jobs SET shown_status = shown_status WHERE id = :job"), {"job": jobs[0]}
            )
            task = asyncio.create_task(statement())
            await waiting_for_a_lock(watcher)
            await other.execute(lock(jobs[1]) if then is None else then)  # before the fix: a deadlock
            await other.commit()
    finally:
        if task is not None:
            await asyncio.wait_for(task, WAIT)


async def test_the_renewer_waits_for_a_row_locked_in_id_order_instead_of_deadlocking(quiet: Core) -> None:
    old = utcnow() + timedelta(seconds=5)
    jobs = await running_jobs(quiet, old)
    await interleaved(quiet, jobs, quiet.queue._renew_leases)
    async with quiet.sessions() as session:
        renewed = await session.scalar(select(func.count()).where(GenerationJob.lease_until > old))
    assert renewed == JOBS


async def test_the_stop_gives_back_its_jobs_past_a_row_locked_in_id_order(quiet: Core) -> None:
    jobs = await running_jobs(quiet, utcnow() + timedelta(seconds=30))
    await interleaved(quiet, jobs, quiet.queue._release_cut_off)  # it logs a failure instead of raising
    async with quiet.sessions() as session:
        queued = await session.scalar(select(func.count()).where(GenerationJob.status == "queued"))
    assert queued == JOBS


async def test_a_batch_marks_its_jobs_done_past_a_row_locked_in_id_order(quiet: Core) -> None:
    jobs = await running_jobs(quiet, utcnow() + timedelta(seconds=30))
    now = utcnow()
    async with quiet.sessions() as session:
        ann = await session.scalar(select(Person.id).where(Person.handle == "ann"))
        rows = [
            {
                "author_id": ann, "prompt": f"a fox {n}", "image_path": "x.png", "width": 1024, "height": 1024,
                "seed": n, "backend": "local", "model": "m", "visibility": "public", "like_count": 0,
                "remix_count": 0, "hot": hot_score(0, now), "created_at": now,
            }
            for n in range(JOBS)
        ]  # fmt: skip
        made = sorted(await session.scalars(insert(Post).returning(Post.id), rows))
        await session.commit()
    post_of = dict(zip(jobs, made, strict=True))

    async def mark_done() -> int:
        async with quiet.sessions() as session:
            statement = together._mark_done(post_of, quiet.queue.worker_id, on_postgres(session))
            done = (await session.scalars(statement)).all()
            await session.commit()
        return len(done)

    await interleaved(quiet, jobs, mark_done)
    async with quiet.sessions() as session:
        done = {job: post for job, post in await session.execute(select(GenerationJob.id, GenerationJob.post_id))}
    assert done == post_of


async def test_a_merge_moves_the_jobs_past_a_row_locked_in_id_order(quiet: Core) -> None:
    """A merge moves the absorbed person's running jobs too, which the queue's renewer updates meanwhile."""
    await quiet.handle(actor("ann"), "/start")
    jobs = await running_jobs(quiet, utcnow() + timedelta(seconds=30), handle="bob")

    async def merge() -> None:
        async with quiet.sessions() as session:
            ann = await session.scalar(select(Person).where(Person.handle == "ann"))
            bob = await session.scalar(select(Person).where(Person.handle == "bob"))
            assert ann is not None and bob is not None
            await merge_people(session, ann, bob)
            await session.commit()

    await interleaved(quiet, jobs, merge)
    async with quiet.sessions() as session:
        people = set(await session.scalars(select(GenerationJob.person_id)))
        ann = await session.scalar(select(Person.id).where(Person.handle == "ann"))
    assert people == {ann}


BOBS_ROW = text("SELECT people.id FROM people WHERE people.handle = 'bob' FOR UPDATE")


@pytest.mark.parametrize("then", ["the person", "the next job"])
async def test_a_ban_cancels_the_queued_jobs_past_a_claim_or_a_merge_holding_one(quiet: Core, then: str) -> None:
    """A claim locks its candidate job, then the person's row (to count their running jobs): a ban locked the
    person's row before their queued jobs, and the two deadlocked; it takes the jobs first now. A merge's move
    locks them in ascending id: so does the ban."""
    await quiet.handle(actor("admin"), "/start")
    jobs = await jobs_of(quiet, "bob", status="queued")

    async def ban() -> None:
        async with quiet.sessions() as session:
            admin = await session.scalar(select(Person).where(Person.handle == "admin"))
            bob = await session.scalar(select(Person).where(Person.handle == "bob"))
            assert admin is not None and bob is not None
            await bans.ban(session, admin, bob, None, "spam", quiet.galleries)
            await session.commit()

    await interleaved(quiet, jobs, ban, then=BOBS_ROW if then == "the person" else None)
    async with quiet.sessions() as session:
        statuses = list(await session.scalars(select(GenerationJob.status)))
    assert statuses == ["failed"] * JOBS


async def test_a_claim_passes_over_a_job_whose_persons_row_another_transaction_holds(quiet: Core) -> None:
    """A claim locks the candidate job and its person's row together, passing over rows others hold: while a
    transaction holds ann's row (her next /imagine, a ban, another process's claim for her), bob's job, next in
    line, is taken at once instead of waiting behind it; hers once the row is free."""
    for who in ("ann", "bob"):
        [reply] = await quiet.handle(actor(who), f"/imagine {who}'s fox")
        assert reply.job_id is not None, reply.text
    async with quiet.engine.connect() as other:
        await other.execute(text("SELECT id FROM people WHERE handle = 'ann' FOR UPDATE"))
        claimed = await asyncio.wait_for(quiet.queue._claim_with_author(), WAIT)
        await other.rollback()
    assert claimed is not None and claimed[1] == "bob"
    claimed = await asyncio.wait_for(quiet.queue._claim_with_author(), WAIT)
    assert claimed is not None and claimed[1] == "ann"
