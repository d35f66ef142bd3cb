"""Completions that wait for the turn are written together (core.gen.together)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.app import Core
from core.db import is_sqlite
from core.gen import together
from core.models import GenerationJob, Post
from tests.core.test_generation_queue import ScriptedBackend, _value, make_core, signed_claim, stored_files, until
from tests.core.test_statement_counts import counting
from tests.support import Chat

__all__ = ["make_core"]  # the fixture, imported for these tests

PEOPLE = ("alice", "bob", "carol")


@pytest.fixture
async def held(make_core) -> AsyncIterator[tuple[Core, list[int]]]:
    """Three jobs whose images are made, each completion waiting for the writer's turn, which the test holds."""
    backend = ScriptedBackend()
    backend.gate = asyncio.Event()
    core = await make_core(backend, generation_concurrency=3)
    chat = Chat(core)
    jobs = []
    for who in PEOPLE:
        [reply] = await chat.say(who, f"/imagine a fox for {who}")
        assert reply.job_id is not None, reply.text
        jobs.append(reply.job_id)
    await until(lambda: _value(backend.running), 3)
    async with core.queue._claim_lock:
        backend.gate.set()
        await until(lambda: _value(len(core.queue._finished)), 3)
        yield core, jobs


async def done_jobs(core: Core, jobs: list[int]) -> dict[int, int | None]:
    async with core.sessions() as session:
        rows = await session.execute(
            select(GenerationJob.id, GenerationJob.post_id).where(
                GenerationJob.id.in_(jobs), GenerationJob.status == "done"
            )
        )
        return {job_id: post_id for job_id, post_id in rows}


async def wait_done(core: Core, jobs: list[int], wanted: int) -> dict[int, int | None]:
    async with asyncio.timeout(10):
        while len(found := await done_jobs(core, jobs)) != wanted:  # noqa: ASYNC110 - the state is in the database
            await asyncio.sleep(0.02)
    return found


async def test_completions_waiting_for_the_turn_are_written_in_one_transaction(held) -> None:
    core, jobs = held
    with counting(core) as seen:
        core.queue._claim_lock.release()
        try:
            posts = await wait_done(core, jobs, 3)
        finally:
            await core.queue._claim_lock.acquire()  # the fixture's `async with` lets it go again
    inserts = [s for s in seen if s.startswith("INSERT INTO posts")]
    commits_of_jobs = [s for s in seen if s.startswith("UPDATE generation_jobs") and "post_id=CASE" in s]
    results = [s for s in seen if s.startswith("INSERT INTO deliveries")]  # the three results' rows
    assert (len(inserts), len(commits_of_jobs), len(results)) == (1, 1, 1), seen
    for who, job in zip(PEOPLE, jobs, strict=True):
        post_id = posts[job]
        assert post_id is not None
        claim = await signed_claim(core, post_id)
        assert (claim.post, claim.author, claim.prompt) == (post_id, who, f"a fox for {who}")


async def test_a_job_taken_over_meanwhile_sends_the_batch_one_at_a_time_and_only_it_is_dropped(held) -> None:
    core, jobs = held
    async with core.sessions() as session:  # another worker took bob's job over (a lease that lapsed)
        await session.execute(update(GenerationJob).where(GenerationJob.id == jobs[1]).values(worker="w-other"))
        await session.commit()
    core.queue._claim_lock.release()
    try:
        posts = await wait_done(core, [jobs[0], jobs[2]], 2)
    finally:
        await core.queue._claim_lock.acquire()
    async with core.sessions() as session:
        bobs = await session.get(GenerationJob, jobs[1])
        paths = set((await session.scalars(select(Post.image_path))).all())
    assert bobs is not None and (bobs.status, bobs.worker, bobs.post_id) == ("running", "w-other", None)
    assert len(paths) == 2 and set(posts) == {jobs[0], jobs[2]}
    async with asyncio.timeout(10):  # bob's file, signed for a post that will never be, is removed
        while stored_files(core) != paths:  # noqa: ASYNC110 - the state is on disk
            await asyncio.sleep(0.02)


async def test_workers_whose_batch_found_nothing_next_wait_without_a_look_yet_a_new_job_starts_at_once(held) -> None:
    """The batch looked for each worker's next job in its transaction and found none: the workers wait
    without a claim of their own (each would be a write, all at the end of a wave), and a job queued
    afterwards still wakes one of them, not the poll."""
    core, jobs = held
    if not is_sqlite(core.settings.database_url):
        pytest.skip("only SQLite's batch claims the next jobs")
    core.queue.config = replace(core.queue.config, poll_seconds=60)  # only wake-ups can start a job now
    with counting(core) as seen:
        core.queue._claim_lock.release()
        try:
            await wait_done(core, jobs, 3)
            await asyncio.sleep(0.2)  # the workers have gone back to waiting
        finally:
            await core.queue._claim_lock.acquire()
    claims = [s for s in seen if s.startswith("UPDATE generation_jobs SET status=?, attempts=")]
    assert len(claims) == 1, claims  # the batch's look, for all three
    core.queue._claim_lock.release()
    try:
        backend = core.queue.images.backend
        assert isinstance(backend, ScriptedBackend)
        calls = backend.calls
        [reply] = await Chat(core).say("alice", "/imagine one more fox")
        assert reply.job_id is not None, reply.text
        await until(lambda: _value(backend.calls), calls + 1, within=5)
    finally:
        await core.queue._claim_lock.acquire()


async def claim_next_then(core: Core, after: Callable[[AsyncSession], Awaitable[None]]) -> None:
    """The batch's `_claim_next`, and then `after` with its session, once (SQLite: only its batch claims)."""
    if not is_sqlite(core.settings.database_url):
        pytest.skip("only SQLite's batch claims the next jobs")
    claim_next, done = core.queue._claim_next, []

    async def wrapped(session: AsyncSession, batch: list[together.Finished]) -> None:
        await claim_next(session, batch)
        if not done:
            done.append(True)
            await after(session)

    core.queue._claim_next = wrapped  # type: ignore[method-assign]


async def test_a_stop_just_after_a_batch_claimed_a_next_job_puts_that_job_back_in_line(held) -> None:
    core, jobs = held
    [reply] = await Chat(core).say("dave", "/imagine a fourth fox")
    stops: list[asyncio.Task[None]] = []

    async def stop(_session: AsyncSession) -> None:
        stops.append(asyncio.create_task(core.queue.stop()))  # the stop arrives while the batch commits

    await claim_next_then(core, stop)
    core.queue._claim_lock.release()
    try:
        await wait_done(core, jobs, 3)
        await asyncio.wait_for(stops[0], 10)
    finally:
        await core.queue._claim_lock.acquire()
    async with core.sessions() as session:
        fourth = await session.get(GenerationJob, reply.job_id)
    # Back in line like a job the stop cut off (its claim counted as an attempt), for the next start to run.
    assert fourth is not None and (fourth.status, fourth.worker, fourth.lease_until) == ("queued", None, None)


async def test_a_batch_commit_that_went_through_but_reported_an_error_keeps_its_posts_and_frees_its_claims(
    held,
) -> None:
    core, jobs = held
    [reply] = await Chat(core).say("dave", "/imagine a fourth fox")

    async def commit_then_fail(session: AsyncSession) -> None:
        real = session.commit

        async def commit() -> None:
            await real()
            raise ConnectionError("the connection went away with the commit's answer")

        session.commit = commit  # type: ignore[method-assign]

    await claim_next_then(core, commit_then_fail)
    core.queue._claim_lock.release()
    try:
        posts = await wait_done(core, [*jobs, reply.job_id], 4)  # the fourth is put back, then made
    finally:
        await core.queue._claim_lock.acquire()
    async with core.sessions() as session:
        paths = set((await session.scalars(select(Post.image_path))).all())
    assert len(paths) == 4 and len(set(posts.values())) == 4
    assert paths <= stored_files(core)  # no committed post lost its image


async def test_a_stop_while_a_batch_waits_for_the_turn_still_writes_its_images(held) -> None:
    """The images are made and paid for: a stop that cuts the workers off lets their batch write them,
    instead of throwing them away and making them again after the restart."""
    core, jobs = held
    stopping = asyncio.create_task(core.queue.stop(grace=0))
    await until(lambda: _value(all(task.done() for task in core.queue._tasks)), True)  # the workers are cut off
    core.queue._claim_lock.release()
    try:
        await asyncio.wait_for(stopping, 10)
    finally:
        await core.queue._claim_lock.acquire()
    posts = await done_jobs(core, jobs)
    assert len(posts) == 3 and all(posts.values()), posts


async def test_a_stop_waits_for_a_batch_to_close_its_session_even_without_workers(quiet: Core) -> None:
    """A job run by hand (no workers started) still writes through a batch task: the stop waits for it, so
    the engine is not disposed under a session that is still being closed."""
    [reply] = await Chat(quiet).say("ann", "/imagine a fox in the snow")
    assert reply.job_id is not None, reply.text
    claimed = await quiet.queue._claim_with_author()
    assert claimed is not None
    await quiet.queue._process(*claimed)  # returns once the batch has committed; its task closes the session
    await quiet.queue.stop()
    assert not quiet.queue._writes
    assert (await done_jobs(quiet, [reply.job_id]))[reply.job_id] is not None
