"""The generation queue: workers that turn persisted jobs into posts.

Any number of processes may run workers on one PostgreSQL database. A job is claimed under a lease
(queued -> running, stamped with this worker's id and `lease_until`): on PostgreSQL the candidate row
and its person's row are locked with FOR UPDATE SKIP LOCKED, so concurrent claimers pass over each other's
rows instead of queueing behind them; on SQLite (one process) one conditional UPDATE does it. The queue renews its
running jobs' leases (one statement for all of them) while the backend works; a running job whose
lease has passed belongs to a dead process and the next claim takes it over. The per-person limit is
counted under a lock on the person's row (PostgreSQL), so it holds across processes, or in the claiming
statement itself (SQLite). A job is completed in one transaction that creates the post and marks the
job done only if this worker still owns it, so a retry, a restart or a takeover never makes two posts.
Failures that may pass (429, 5xx, timeouts) are retried with exponential backoff and jitter, honouring
Retry-After; the rest fail at once, and a failed job never counts against the quota.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import ColumnElement, Integer, Select, String, and_, bindparam, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased
from sqlalchemy.sql.dml import ReturningUpdate

from core import posts
from core.db import locked_in_id_order, rowcount
from core.feed import notifications
from core.gen import together
from core.gen.backend import GeneratedImage, GenerationError
from core.gen.service import ImageService, StoredImage, publishable_with_hash
from core.gen.together import Claimed, JobHook, PostHook
from core.models import GenerationJob, Person, Post, UTCDateTime, utcnow

log = logging.getLogger(__name__)

# Embeds the provenance signature in a new post's image (blocking): (image bytes, post id, author handle,
# prompt, parent post id, the pixels' hash); core.provenance.Signer.sign.
Sign = Callable[[bytes, int, str, str, int | None, str | None], bytes]
BACKOFF_BASE = 2.0
BACKOFF_CAP = 120.0
QUOTA_NOTE = " Your quota was not used."
CLAIM_TRIES = 4  # candidates looked at per claim when their people turn out to be at their limit
POST_ID_TRIES = 3  # post ids reserved for one result when another writer takes them meanwhile
# The posts' sequence on PostgreSQL (a BIGSERIAL column), for ids reserved before the insert.
_NEXT_POST_ID = select(func.nextval(func.pg_get_serial_sequence(Post.__tablename__, "id")))
# A completion's statements, built once with the job as a parameter: building them cost about as much as
# running them, inside SQLite's one writer's turn.
# The claimed job's author, returned by the claim's UPDATE (a scalar subquery in RETURNING).
_OTHER_JOB = aliased(GenerationJob)  # the person's other jobs, counted in a claim's take (PostgreSQL)
_AUTHOR_HANDLE = (
    select(Person.handle).where(Person.id == GenerationJob.person_id).correlate(GenerationJob).scalar_subquery()
)
_DONE = (
    update(GenerationJob)
    .where(
        GenerationJob.id == bindparam("job", type_=Integer),
        GenerationJob.status == "running",
        GenerationJob.worker == bindparam("owner", type_=String),
    )
    .values(
        status="done",
        post_id=bindparam("post", type_=Integer),
        finished_at=bindparam("at", type_=UTCDateTime()),
        error=None,
        lease_until=None,
    )
    .returning(GenerationJob)
    .execution_options(synchronize_session=False)
)


_OWNER = bindparam("owner", type_=String)
_MINE = (GenerationJob.status == "running", GenerationJob.worker == _OWNER)  # a worker's running jobs


def _of_worker(postgres: bool) -> ColumnElement[bool]:
    """A worker's running jobs, for the UPDATEs of them all. The renewer's, a batch's completion and the
    stop's may run at once on this queue's connections: on PostgreSQL each locks them in ascending id
    (core.db.locked_in_id_order), so none of them deadlocks another."""
    return locked_in_id_order(postgres, GenerationJob.id, *_MINE)


# Keyed by PostgreSQL or not. The renewer's (`until`: the new end of the leases).
_RENEW = {
    postgres: update(GenerationJob)
    .where(_of_worker(postgres))
    .values(lease_until=bindparam("until", type_=UTCDateTime()))
    .execution_options(synchronize_session=False)
    for postgres in (False, True)
}
# The jobs cut off by a stop go back in line (`now`: due at once).
_RELEASE = {
    postgres: update(GenerationJob)
    .where(_of_worker(postgres))
    .values(status="queued", worker=None, lease_until=None, not_before=bindparam("now", type_=UTCDateTime()))
    .execution_options(synchronize_session=False)
    for postgres in (False, True)
}


def gave_up(attempts: int) -> str:
    """The end of a final failure's message: a backend's message says what went wrong, never what
    happens next, since only the queue knows whether this was the last try."""
    return f"I gave up after {attempts} attempt{'s' if attempts != 1 else ''}."


class Breaker(Protocol):
    """What the queue needs of a circuit breaker (core.gen.breaker.CircuitBreaker)."""

    def allow(self) -> bool: ...
    def record(self, exc: BaseException | None) -> None: ...
    def release(self) -> None: ...
    @property
    def reopens_at(self) -> datetime | None: ...


@dataclass(frozen=True, slots=True)
class QueueSettings:
    concurrency: int = 4
    per_person: int = 2
    max_attempts: int = 5
    timeout: float = 180.0
    poll_seconds: float = 1.0
    backoff_base: float = BACKOFF_BASE
    lease: float = 30.0  # seconds a claim holds without renewal; renewed every lease / 3

    @property
    def renew_seconds(self) -> float:
        return self.lease / 3


def backoff(attempt: int, base: float = BACKOFF_BASE) -> float:
    """Seconds to wait before attempt number `attempt + 1`, with ±20 % jitter."""
    return min(BACKOFF_CAP, base * 2.0 ** max(0, attempt - 1)) * random.uniform(0.8, 1.2)


class GenerationQueue:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        images: ImageService,
        config: QueueSettings,
        *,
        on_progress: JobHook,
        on_published: PostHook,
        breaker: Breaker | None = None,
        on_committed: Callable[[], None] = lambda: None,
        sign: Sign | None = None,
    ) -> None:
        self.sign = sign
        self.sessions = sessions
        self.images = images
        self.config = config
        self.on_progress = on_progress
        self.on_published = on_published
        self.breaker = breaker
        self.on_committed = on_committed  # progress rows were written: wake the outbox
        self.worker_id = f"w-{uuid.uuid4().hex[:12]}"
        # One event per idle worker (waiting, or looking for a job): wake() sets one of them, so a
        # new job wakes one worker instead of every idle worker racing for it.
        self._idle: list[asyncio.Event] = []
        self._claim_lock = asyncio.Lock()
        # SQLite lets one writer in at a time and makes the others sleep and retry with growing pauses
        # (its busy timeout); when many jobs finish together, taking turns on this lock is much faster.
        bind = sessions.kw.get("bind")
        self._one_writer = bind is not None and bind.dialect.name == "sqlite"
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self._renewer: asyncio.Task[None] | None = None
        self._renewer_done = asyncio.Event()
        # Built on first use (_claim_in_one_statement).
        self._sqlite_claim: ReturningUpdate[GenerationJob, str] | None = None
        self._last_post_id: int | None = None  # SQLite: the last post id reserved (see _reserve_post_id)
        self._wakes = 0  # wake() calls so far (together.Next)
        self._finished: list[together.Finished] = []  # completions waiting for the turn (_write_together)
        self._writes: set[asyncio.Task[None]] = set()  # batches being written (_write_together)

    async def start(self) -> None:
        await self.recover()
        self._stopping = False
        self._tasks = [
            asyncio.create_task(self._work(), name=f"generation-{i}") for i in range(self.config.concurrency)
        ]
        self._renewer_done = asyncio.Event()
        self._renewer = asyncio.create_task(self._renew(), name="generation-leases")

    async def recover(self) -> int:
        """On SQLite, where only one process may run (core.roles), every running job's worker is
        dead: end their leases now, so a restart takes them over at once instead of after the lease.
        On PostgreSQL another process may be running them: their leases decide."""
        if not self._one_writer:
            return 0
        async with self.sessions() as session:
            result = await session.execute(
                update(GenerationJob).where(GenerationJob.status == "running").values(lease_until=None)
            )
            await session.commit()
        count = rowcount(result)
        if count:
            log.info("%d generation jobs left running by a crash will be taken over", count)
        return count

    async def stop(self, grace: float = 5.0) -> None:
        """Stop taking jobs; jobs still running after the grace period are cut off and go back in line."""
        self._stopping = True
        for signal in self._idle:
            signal.set()
        if self._tasks:
            _done, pending = await asyncio.wait(self._tasks, timeout=grace)
            for task in pending:
                task.cancel()
            for task in pending:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        # A batch whose workers were cut off still writes what it holds, first; and one whose workers went on
        # (or a job run without workers) may still be closing its session, which must not outlive the engine.
        if self._writes:
            await asyncio.wait(list(self._writes))
        if self._tasks:
            # Also when every worker ended in time: a job a batch claimed for a worker that then saw the
            # stop is running under our name, unstarted.
            await self._release_cut_off()
        self._tasks = []
        if self._renewer is not None:
            self._renewer_done.set()
            await asyncio.wait([self._renewer])  # not cancelled: a cancel could cut its commit short
            self._renewer = None

    async def _release_cut_off(self) -> None:
        """Jobs cut off by the stop go back in line at once, not after their lease, for another
        process (or the next start) to run."""
        try:
            async with self.sessions() as session:
                await session.execute(_RELEASE[not self._one_writer], {"owner": self.worker_id, "now": utcnow()})
                await session.commit()
        except Exception:
            log.exception("could not give back the jobs cut off by the stop; their leases will")

    def wake(self) -> None:
        """A job may be runnable: wake one idle worker. A worker that takes a job wakes the next one
        (see _work), so a burst of jobs fans out over the idle workers."""
        self._wakes += 1
        for signal in self._idle:
            if not signal.is_set():
                signal.set()
                return
        # Every idle worker is already due to look again (or none is idle): nothing is lost.

    async def _work(self) -> None:
        signal = asyncio.Event()
        self._idle.append(signal)  # idle while it looks too, so a wake-up during the look is not lost
        handed: together.Next | None = None  # what the transaction that wrote the last job found next
        try:
            while not self._stopping:
                signal.clear()
                try:
                    if handed is None or (handed.claimed is None and handed.wakes != self._wakes):
                        claimed = await self._claim_with_author()
                    else:  # the last job's transaction claimed it, or found none and nothing was queued since
                        claimed = handed.claimed
                except Exception:
                    log.exception("claiming a generation job failed")
                    claimed = None
                handed = None
                if claimed is None:
                    if self._stopping:  # stop() may have set the event while we were claiming
                        break
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(signal.wait(), self.config.poll_seconds)
                    continue
                job, author = claimed
                self._idle.remove(signal)
                self.wake()  # more jobs may be waiting; a wake-up meant for us passes on too
                try:
                    # When it is done this worker looks again at once, which also finds a job
                    # that waited for this person's slot.
                    handed = await self._process(job, author)
                except Exception:
                    # A bug or a lost database must not end this worker: the job goes back in line.
                    log.exception("generation job %s crashed its worker; queueing it again", job.id)
                    await self._requeue_after_crash(job)
                finally:
                    self._idle.append(signal)
        finally:
            self._idle.remove(signal)

    async def _claim(self) -> GenerationJob | None:
        claimed = await self._claim_with_author()
        return claimed[0] if claimed is not None else None

    async def _claim_with_author(self) -> Claimed | None:
        """The next job, taken under a lease, and its author's handle (for the backend's request): the
        handle comes back in the claim's RETURNING, so a claim is one statement and one commit."""
        # The session outside the lock: closing a session yields to the event loop (SQLAlchemy closes it in a
        # task of its own), and every other writer would wait out that round too. It takes no connection
        # until its first statement, which comes under the lock.
        async with self.sessions() as session, self._claim_lock:
            await session.connection()
            if self._one_writer:
                claimed = await self._claim_in_one_statement(session)
            else:
                claimed = await self._claim_under_row_locks(session)
            if claimed is not None:
                await self.on_progress(session, [claimed[0]])
            await session.commit()
        if claimed is None:
            return None
        self.on_committed()
        job, handle = claimed
        # Without the handle (an author gone meanwhile) the completion finds the job's author gone too.
        return job, handle or ""

    async def _claim_in_one_statement(self, session: AsyncSession) -> tuple[GenerationJob, str | None] | None:
        """SQLite: one UPDATE picks the first claimable job of a person under their limit and takes it.
        SQLite runs a writing statement under its one write lock, on the newest data, so the candidate,
        the per-person count and the take are one atomic step: no row locks, no retries."""
        now = utcnow()  # read after the lock and a connection: a job queued during that wait is already due
        if self._sqlite_claim is None:
            # Built once, with the clock and this worker as parameters: building it cost more than running it.
            at = bindparam("now", type_=UTCDateTime())
            self._sqlite_claim = (
                update(GenerationJob)
                .where(
                    GenerationJob.id
                    == self._candidates(at, set(), lock=False).with_only_columns(GenerationJob.id).scalar_subquery()
                )
                .values(
                    status="running",
                    worker=self.worker_id,
                    lease_until=bindparam("lease_until", type_=UTCDateTime()),
                    attempts=GenerationJob.attempts + 1,
                )
                .returning(GenerationJob, _AUTHOR_HANDLE)
                .execution_options(synchronize_session=False)
            )
        lease_until = now + timedelta(seconds=self.config.lease)
        row = (await session.execute(self._sqlite_claim, {"now": now, "lease_until": lease_until})).first()
        return None if row is None else (row[0], row[1])

    async def _claim_under_row_locks(self, session: AsyncSession) -> tuple[GenerationJob, str | None] | None:
        """PostgreSQL, where other processes claim too: the candidate row and its person's row are locked
        together, passing over rows locked by others (SKIP LOCKED); then the take, which counts the person's
        running jobs in its WHERE. Two statements, exact: the take's snapshot starts after the person's row
        is ours, so it sees every claim of theirs that committed, and none can be under way (it would hold
        the row)."""
        full: set[int] = set()  # people found at their limit under their row's lock
        for _ in range(CLAIM_TRIES):
            # The clock is read after waiting for the lock and a connection, so a job queued during that
            # wait (stamped not_before = its enqueue time) is already due.
            now = utcnow()
            candidate = (await session.execute(self._candidates(now, full, with_person=True))).first()
            if candidate is None:
                return None
            job_id, person_id = candidate
            row = (await session.execute(self._take_if_room(job_id, person_id, now))).first()
            if row is not None:
                return row[0], row[1]
            full.add(person_id)  # the job is ours to take (its row is locked), so its person is at their limit
            await session.rollback()  # let go of the rows locked for this try
        return None

    def _take_if_room(self, job_id: int, person_id: int, now: datetime) -> ReturningUpdate[GenerationJob, str]:
        """PostgreSQL: the job taken if its person, whose row this transaction holds, runs fewer than their
        limit elsewhere."""
        others = (
            select(func.count())
            .select_from(_OTHER_JOB)
            .where(_OTHER_JOB.person_id == person_id, _OTHER_JOB.id != job_id, self._live(now, _OTHER_JOB))
            .scalar_subquery()
        )
        return (
            update(GenerationJob)
            .where(GenerationJob.id == job_id, self._claimable(now), others < self.config.per_person)
            .values(**self._taken(now))
            .returning(GenerationJob, _AUTHOR_HANDLE)
            .execution_options(synchronize_session=False)
        )

    def _taken(self, now: datetime) -> dict[str, object]:
        return {
            "status": "running",
            "worker": self.worker_id,
            "lease_until": now + timedelta(seconds=self.config.lease),
            "attempts": GenerationJob.attempts + 1,
        }

    @staticmethod
    def _claimable(now: datetime | ColumnElement[datetime]) -> ColumnElement[bool]:
        """Queued and due, or running under a lease that has passed (its worker died)."""
        expired = or_(GenerationJob.lease_until.is_(None), GenerationJob.lease_until < now)
        return or_(
            and_(GenerationJob.status == "queued", GenerationJob.not_before <= now),
            and_(GenerationJob.status == "running", expired),
        )

    def _live(self, now: datetime | ColumnElement[datetime], job: Any = GenerationJob) -> ColumnElement[bool]:
        """`job`: GenerationJob or an alias of it."""
        return and_(job.status == "running", job.lease_until >= now)

    def _candidates(
        self, now: datetime | ColumnElement[datetime], full: set[int], *, lock: bool = True, with_person: bool = False
    ) -> Select[int, int]:
        """The next claimable job and its person; `lock` (PostgreSQL): its row, and with `with_person` its
        person's row too, locked, rows other processes hold passed over."""
        busy = (
            select(GenerationJob.person_id)
            .where(self._live(now))
            .group_by(GenerationJob.person_id)
            .having(func.count() >= self.config.per_person)
        )
        # Columns, not the entity: a job loaded here would stay stale in the session after the UPDATE.
        query = (
            select(GenerationJob.id, GenerationJob.person_id)
            .where(self._claimable(now), GenerationJob.person_id.not_in(busy))
            .where(*([GenerationJob.person_id.not_in(full)] if full else []))
            .order_by(GenerationJob.id)
            .limit(1)
        )
        if not lock:
            return query
        if with_person:
            query = query.join(Person, Person.id == GenerationJob.person_id)
        # PostgreSQL: pass over the rows other processes are claiming.
        return query.with_for_update(skip_locked=True, of=(GenerationJob, Person) if with_person else GenerationJob)

    async def _renew(self) -> None:
        """Every lease / 3, one UPDATE renews the lease of every job this queue is running, so no other
        worker takes them over while they live. One task and one statement for all of them, instead of a
        task per job whose start and end cost every job two rounds of the event loop."""
        while not self._renewer_done.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._renewer_done.wait(), self.config.renew_seconds)
            if self._renewer_done.is_set():
                return
            try:
                await self._renew_leases()
            except Exception:  # the jobs go on; a lapsed lease costs at most a result dropped
                log.exception("could not renew the leases of the running generation jobs")

    async def _renew_leases(self) -> None:
        until = utcnow() + timedelta(seconds=self.config.lease)
        async with self.sessions() as session:
            await session.execute(_RENEW[not self._one_writer], {"owner": self.worker_id, "until": until})
            await session.commit()

    async def _process(self, job: GenerationJob, author: str) -> together.Next | None:
        """The job, from the backend's call to its post; returns the worker's next job when the transaction
        that wrote this one claimed it too (core.gen.together)."""
        if job.attempts > self.config.max_attempts:
            # Every allowed run of it was cut off (a crash, a stop) and this is a take-over: it may be what
            # brings the process down, so it is not run again.
            cut_off = f"The last try was cut off (a restart or a crash). {gave_up(job.attempts - 1)}"
            await self._failed(job, cut_off, retryable=False)
            return None
        if self.breaker is not None and not self.breaker.allow():
            await self._requeue(job, self.breaker.reopens_at or utcnow() + timedelta(seconds=30), undo_attempt=True)
            return None
        outcome: BaseException | None = None
        try:
            source = await self._source(job)
            generated, from_source = await asyncio.wait_for(
                self.images.create(job.prompt, job.seed, job.aspect, author, source), self.config.timeout + 5
            )
            post_id = await self._reserve_post_id() if self.sign is not None else None
            stored = await self._store(generated, from_source, post_id, author, job.prompt, job.parent_id)
        except TimeoutError:
            outcome = GenerationError("The image service took too long to answer.", retryable=True)
        except GenerationError as exc:
            outcome = exc
        except Exception as exc:
            log.exception("generation job %s failed", job.id)
            outcome = exc
        except BaseException:
            if self.breaker is not None:
                self.breaker.release()
            raise
        if self.breaker is not None:
            self.breaker.record(outcome)
        if outcome is None:
            return await self._complete(job, stored, author)
        if isinstance(outcome, GenerationError):
            await self._failed(job, str(outcome), retryable=outcome.retryable, retry_after=outcome.retry_after)
        else:
            await self._failed(job, "Something went wrong while making the image.", retryable=True)
        return None

    async def _source(self, job: GenerationJob) -> bytes | None:
        """The picture the job starts from; None when it has none, or it is gone (a parent deleted since)."""
        if job.source_path is None or not self.images.edits:
            return None
        try:
            return await asyncio.to_thread(self.images.media.path(job.source_path).read_bytes)
        except OSError:
            log.info("generation job %s: its starting picture is gone; using the prompt alone", job.id)
            return None

    def _owned(self, job: GenerationJob) -> list[ColumnElement[bool]]:
        return [GenerationJob.id == job.id, GenerationJob.status == "running", GenerationJob.worker == self.worker_id]

    async def _complete(self, job: GenerationJob, stored: StoredImage, handle: str) -> together.Next | None:
        """The post, and the job marked done, in one transaction. The file work (making it publishable,
        signing, the fsync'd save) was done before it, with the post's id reserved, so on SQLite the one
        writer's turn holds only the statements."""
        for _ in range(POST_ID_TRIES):
            try:
                return await self._commit_post(job, stored, handle)
            except IntegrityError:
                if stored.post_id is not None and await self._done_with(job, stored.post_id):
                    # The post is ours: a batch's commit went through although it reported an error.
                    return None
                # Another writer (not this queue) took the reserved id: reserve another one.
                if stored.post_id is None or not await self._post_id_taken(stored.post_id):
                    raise
                log.info("post id %s was taken meanwhile; signing generation job %s again", stored.post_id, job.id)
                await self.images.media.delete(stored.path)
                stored = await self._resign(stored, await self._reserve_post_id(), handle, job.prompt, job.parent_id)
        raise RuntimeError(f"generation job {job.id}: every post id reserved for it was taken meanwhile")

    async def _commit_post(self, job: GenerationJob, stored: StoredImage, handle: str) -> together.Next | None:
        """Returns what the completion's transaction found for the worker's next turn (a batch looks)."""
        if together.fits(job, stored):
            finished = together.Finished(job, stored, handle)
            self._finished.append(finished)
            if len(self._finished) == 1:  # the first to wait starts the write for all who wait with it
                # A task of its own, so that its worker, like the others, goes on as soon as the commit is
                # through, not after the session's close and the next batch's turn.
                write = asyncio.create_task(self._write_together(), name="generation-batch")
                self._writes.add(write)
                write.add_done_callback(self._writes.discard)
            if await finished.written:
                return finished.next
        await self._commit_alone(job, stored, handle)
        return None

    async def _write_together(self) -> None:
        """When the turn comes (SQLite's one writer; on PostgreSQL this process's turn, which its claims
        take too), the completions waiting for it are written in one transaction (core.gen.together); if
        any of them needs the one-at-a-time path, all take it."""
        batch: list[together.Finished] = []
        written = False
        unsure: list[GenerationJob] = []  # next jobs claimed in a transaction that reported an error
        try:
            async with self.sessions() as session, self._claim_lock:  # the session outside the turn: see _claim
                batch, self._finished = self._finished, []
                try:
                    await together.write(session, batch, self.worker_id, self.on_progress, self.on_published)
                    if self._one_writer:  # PostgreSQL's claim lets go of its row locks between tries: not here
                        await self._claim_next(session, batch)
                    await session.commit()
                    written = True
                    # The workers go on to their next images now, before the turn passes to the next batch,
                    # whose statements would otherwise run first (they hold the loop: core/sqlite_inline.py).
                    for finished in batch:
                        if not finished.written.done():  # a stop cancelled its worker's wait
                            finished.written.set_result(True)
                except together.GoAlone as exc:
                    log.info("%s completions go one at a time: %s", len(batch), exc)
                except Exception:
                    log.exception("%s completions written together failed; each goes alone", len(batch))
        except Exception:  # closing the session, after the commit: what was written stays written
            log.exception("closing the session of %s completions written together failed", len(batch))
        finally:
            # Also when this task is cancelled (the loop closing) before or while it writes: the others go alone.
            waiting = batch or self._finished
            if not batch:
                self._finished = []
            for finished in waiting:
                if not written and finished.next is not None:
                    if finished.next.claimed is not None:
                        unsure.append(finished.next.claimed[0])
                    finished.next = None
                if not finished.written.done():
                    finished.written.set_result(written)
        # A commit may fail after the database committed (a connection lost on its answer): such claims
        # would stay ours, unstarted. Back in line (a no-op when the transaction did roll back); each
        # completion then finds its own post already written (_complete).
        for job in unsure:
            await self._requeue(job, utcnow(), undo_attempt=True)
        if written:
            self.on_committed()

    async def _claim_next(self, session: AsyncSession, batch: list[together.Finished]) -> None:
        """In the batch's transaction, each worker's next job: no turn of its own to wait for, no session
        of its own. The claims come after the batch's jobs are done, so their authors' limits count them
        so. At the first claim that finds nothing the rest are told so: they wait without a look of their
        own, unless a job is queued meanwhile (together.Next)."""
        started: list[GenerationJob] = []
        for place, finished in enumerate(batch):
            if self._stopping:
                break
            wakes = self._wakes  # read before the look: a job it does not see wakes the queue after it
            claimed = await self._claim_in_one_statement(session)
            if claimed is None:
                for rest in batch[place:]:
                    rest.next = together.Next(None, wakes)
                break
            job, handle = claimed
            started.append(job)
            finished.next = together.Next((job, handle or ""), wakes)
        if started:  # the line moved up by them all: its first few see their new place once
            await self.on_progress(session, started)

    async def _commit_alone(self, job: GenerationJob, stored: StoredImage, handle: str) -> None:
        turn = self._claim_lock if self._one_writer else contextlib.nullcontext()
        stale: str | None = None  # our file, when no post of ours uses it
        finished: GenerationJob | None = None
        async with self.sessions() as session, turn:  # the session outside the turn: see _claim
            # Read through the job's row, not the copy loaded at claim time: a merge of two accounts
            # (core.merging) may have moved the job to another person meanwhile.
            author = (await together.authors(session, [job.id])).get(job.id)
            parent = await session.get(Post, job.parent_id) if job.parent_id else None
            if author is None:  # the account is gone, and the job with it
                stale = stored.path if stored.post_id is not None else None  # signed for our post id: ours alone
            else:
                finished, stale = await self._post_and_done(session, job, stored, handle, author, parent)
        if stale is not None:
            await self.images.media.delete(stale)
        if finished is not None:
            self.on_committed()

    async def _post_and_done(
        self,
        session: AsyncSession,
        job: GenerationJob,
        stored: StoredImage,
        handle: str,
        author: Person,
        parent: Post | None,
    ) -> tuple[GenerationJob | None, str | None]:
        """Inside the turn: the post and the job marked done, committed. Returns the done job (None when
        another worker took the job over) and our file when no post uses it."""
        stale: str | None = None
        parent_id = parent.id if parent is not None else None
        if stored.post_id is not None and (author.handle, parent_id) != (handle, job.parent_id):
            # Rare: a merge moved the job, a rename, or the parent went away since the file was signed.
            stale = stored.path
            stored = await self._resign(stored, stored.post_id, author.handle, job.prompt, parent_id)
        post = await posts.create_post(session, together.post_for(job, stored, author, parent))
        finished = await session.scalar(
            _DONE, {"job": job.id, "owner": self.worker_id, "post": post.id, "at": utcnow()}
        )
        if finished is None:
            # Another worker took this job over (a restart while we ran): its post is the one.
            await session.rollback()
            log.warning("generation job %s was taken over; dropping our result", job.id)
            # Signed with our post id, the file is ours alone.
            stale = stored.path if stored.post_id is not None else stale
        else:
            await self.on_progress(session, [finished])
            if parent is not None and post.is_public:  # a private remix is not the parent author's news
                await self._tell_ancestors(session, post, parent)
            if post.is_public:
                await self.on_published(session, post)
            await session.commit()
        return finished, stale

    async def _store(
        self,
        generated: GeneratedImage,
        from_source: bool,
        post_id: int | None,
        handle: str,
        prompt: str,
        parent_id: int | None,
    ) -> StoredImage:
        """The backend's image made publishable, signed for post `post_id` (when signing is on) from the
        bytes in memory, and saved (fsync'd): one thread hop for all of it."""

        def blocking() -> StoredImage:
            image, pixels = publishable_with_hash(generated)
            path = self._save_signed(image, pixels, post_id, handle, prompt, parent_id)
            return StoredImage(image, pixels, path, post_id, from_source)

        return await asyncio.to_thread(blocking)

    async def _resign(
        self, stored: StoredImage, post_id: int, handle: str, prompt: str, parent_id: int | None
    ) -> StoredImage:
        def blocking() -> str:
            return self._save_signed(stored.image, stored.pixels, post_id, handle, prompt, parent_id)

        return replace(stored, path=await asyncio.to_thread(blocking), post_id=post_id)

    def _save_signed(
        self, image: GeneratedImage, pixels: str, post_id: int | None, handle: str, prompt: str, parent_id: int | None
    ) -> str:
        """Blocking: call from a thread."""
        data = image.data
        if self.sign is not None and post_id is not None:
            data = self.sign(data, post_id, handle, prompt, parent_id, pixels)
        return self.images.media.save_blocking(data, image.extension)

    async def _reserve_post_id(self) -> int:
        """An id for the next post, taken before its insert so that its image can be signed outside the
        write transaction. SQLite has one process (core.roles): the ids are counted here, from the
        highest one stored. PostgreSQL: the posts' own sequence, shared by every process."""
        if self._one_writer:
            if self._last_post_id is None:
                async with self.sessions() as session:
                    highest = await session.scalar(select(func.max(Post.id))) or 0
                # max(): another worker may have read and counted on meanwhile.
                self._last_post_id = max(self._last_post_id or 0, highest)
            self._last_post_id += 1
            return self._last_post_id
        async with self.sessions() as session:
            reserved = (await session.execute(_NEXT_POST_ID)).scalar_one()
        return int(reserved)

    async def _done_with(self, job: GenerationJob, post_id: int) -> bool:
        async with self.sessions() as session:
            done = await session.scalar(
                select(GenerationJob.id).where(
                    GenerationJob.id == job.id, GenerationJob.status == "done", GenerationJob.post_id == post_id
                )
            )
        return done is not None

    async def _post_id_taken(self, post_id: int) -> bool:
        async with self.sessions() as session:
            taken = await session.scalar(select(Post.id).where(Post.id == post_id)) is not None
        self._last_post_id = None  # count on from the highest id stored now
        return taken

    async def _tell_ancestors(self, session: AsyncSession, post: Post, parent: Post) -> None:
        """The parent's author hears of the remix; the grandparent's (the original of a remix of a remix)
        too, once. Older ancestors are not told: one level of credit news per remix is enough."""
        await notifications.record(
            session, recipient_id=parent.author_id, actor_id=post.author_id, kind="remix", post_id=parent.id
        )
        grandparent = await session.get(Post, parent.parent_id) if parent.parent_id else None
        if grandparent is not None and grandparent.author_id != parent.author_id:
            await notifications.record(
                session,
                recipient_id=grandparent.author_id,
                actor_id=post.author_id,
                kind="remix2",
                post_id=grandparent.id,
            )

    async def _failed(
        self, job: GenerationJob, message: str, *, retryable: bool, retry_after: float | None = None
    ) -> None:
        if retryable and job.attempts < self.config.max_attempts:
            delay = retry_after if retry_after is not None else backoff(job.attempts, self.config.backoff_base)
            log.info("generation job %s: %s; retrying in %.1f s", job.id, message.rstrip("."), delay)
            await self._requeue(job, utcnow() + timedelta(seconds=delay), error=message)
            return
        final = message if not retryable else f"{message} {gave_up(job.attempts)}"
        async with self.sessions() as session:
            result = await session.execute(
                update(GenerationJob)
                .where(*self._owned(job))
                .values(status="failed", error=final + QUOTA_NOTE, finished_at=utcnow(), lease_until=None)
            )
            if rowcount(result) == 1:
                failed = await session.get(GenerationJob, job.id, populate_existing=True)
                assert failed is not None
                await self.on_progress(session, [failed])
            await session.commit()
        self.on_committed()

    async def _requeue(
        self, job: GenerationJob, when: datetime, *, error: str | None = None, undo_attempt: bool = False
    ) -> None:
        async with self.sessions() as session:
            attempts = GenerationJob.attempts - 1 if undo_attempt else GenerationJob.attempts
            await session.execute(
                update(GenerationJob)
                .where(*self._owned(job))
                .values(status="queued", worker=None, lease_until=None, not_before=when, error=error, attempts=attempts)
            )
            await session.commit()

    async def _requeue_after_crash(self, job: GenerationJob) -> None:
        try:
            await self._requeue(job, utcnow() + timedelta(seconds=backoff(job.attempts, self.config.backoff_base)))
        except Exception:
            log.exception("could not queue job %s again; its lease will pass and another worker takes it", job.id)

    async def wait_for(self, job_id: int) -> GenerationJob:
        """Until the job is done or failed (tests, the console at end of input). Callers bound it
        with `asyncio.timeout`."""
        while True:
            async with self.sessions() as session:
                job = await session.get(GenerationJob, job_id)
            if job is None:
                raise LookupError(f"no generation job {job_id}")
            if job.status in ("done", "failed"):
                return job
            await asyncio.sleep(0.02)

    def working(self) -> bool:
        """Whether a worker of this process holds a job or a batch is being written: the in-memory half of
        `idle`, which asks the database about every process's jobs."""
        return len(self._idle) < len(self._tasks) or bool(self._writes) or bool(self._finished)

    async def idle(self) -> bool:
        """No job queued or running, in any process."""
        async with self.sessions() as session:
            active = await session.scalar(
                select(GenerationJob.id).where(GenerationJob.status.in_(("queued", "running"))).limit(1)
            )
        return active is None
