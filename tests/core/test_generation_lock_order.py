"""PostgreSQL: the UPDATEs of several of a worker's jobs (the lease renewer's, a batch's completion, the stop's
give-back) lock their rows in one order, ascending id, so two of them at once wait for each other.

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

from core.app import Core
from core.db import on_postgres
from core.feed.ranking import hot_score
from core.gen import together
from core.models import GenerationJob, Person, Post, utcnow
from tests.databases import TEST_DATABASE_URL
from tests.support import actor

pytestmark = pytest.mark.skipif(not TEST_DATABASE_URL, reason="PostgreSQL's row locks (SQLite has one writer)")

JOBS = 4
WAIT = 5.0  # seconds anything here may wait for a lock: a hang fails fast (PostgreSQL's deadlock_timeout is 1 s)


async def running_jobs(core: Core, lease_until: datetime) -> list[int]:
    """JOBS jobs this queue runs, the lowest id's row stored last (an update gave it a new version)."""
    await core.handle(actor("ann"), "/start")
    async with core.sessions() as session:
        ann = await session.scalar(select(Person.id).where(Person.handle == "ann"))
        rows = [
            {
                "idempotency_key": f"lock-order-{n}", "person_id": ann, "prompt": f"a fox {n}", "seed": n,
                "status": "running", "worker": core.queue.worker_id, "lease_until": lease_until, "attempts": 1,
            }
            for n in range(JOBS)
        ]  # fmt: skip
        jobs = sorted(await session.scalars(insert(GenerationJob).returning(GenerationJob.id), rows))
        await session.commit()
        await session.execute(update(GenerationJob).where(GenerationJob.id == jobs[0]).values(attempts=2))
        await session.commit()
        physical = list(await session.scalars(text("SELECT id FROM generation_jobs ORDER BY ctid")))
    async with core.engine.connect() as conn:
        # As autovacuum would: the planner then knows the table is one page and scans it in physical order.
        await conn.execute(text("ANALYZE generation_jobs"))
        await conn.commit()
    assert physical == [*jobs[1:], jobs[0]]  # what a seq scan visits: not ascending
    return jobs


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


async def interleaved(core: Core, jobs: list[int], statement: Callable[[], Coroutine[Any, Any, object]]) -> None:
    """Another transaction holds the lowest job; `statement` starts and waits for it; the other transaction
    then takes the next job too, as one locking in ascending id does, and commits."""
    task: asyncio.Task[object] | None = None
    try:
        async with core.engine.connect() as other, core.engine.connect() as watcher:
            await other.execute(text(f"SET LOCAL lock_timeout = '{int(WAIT)}s'"))
            await other.execute(lock(jobs[0]))
            task = asyncio.create_task(statement())
            await waiting_for_a_lock(watcher)
            await other.execute(lock(jobs[1]))  # before the fix: a deadlock, this or the statement aborted
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
