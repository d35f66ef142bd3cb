"""The generation queue: workers that turn persisted jobs into posts.

Any number of processes may run workers on one PostgreSQL database. A job is claimed under a lease
(queued -> running, stamped with this worker's id and `lease_until`): on PostgreSQL the candidate row
is locked with FOR UPDATE SKIP LOCKED, so concurrent claimers pass over each other's rows instead of
queueing behind them; on SQLite (one process) a conditional UPDATE does it. The worker renews the lease
while the backend works; a running job whose lease has passed belongs to a dead process and the next
claim takes it over. The per-person limit is counted under a lock on the person's row, so it holds
across processes. A job is completed in one transaction that creates the post and marks the job done
only if this worker still owns it, so a retry, a restart or a takeover never makes two posts. Failures that may
pass (429, 5xx, timeouts) are retried with exponential backoff and jitter, honouring Retry-After;
the rest fail at once, and a failed job never counts against the quota.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import ColumnElement, Select, and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core import posts
from core.db import rowcount
from core.feed import notifications
from core.gen.backend import GenerationError
from core.gen.service import ImageService, StoredImage
from core.models import GenerationJob, Person, Post, utcnow

log = logging.getLogger(__name__)

JobHook = Callable[[AsyncSession, GenerationJob], Awaitable[None]]
# Embeds the provenance signature in a new post's image (blocking): (image bytes, post, author handle,
# the pixels' hash when already known).
Sign = Callable[[bytes, Post, str, str | None], bytes]
PostHook = Callable[[AsyncSession, Post], Awaitable[None]]
BACKOFF_BASE = 2.0
BACKOFF_CAP = 120.0
QUOTA_NOTE = " Your quota was not used."
CLAIM_TRIES = 4  # candidates looked at per claim when their people turn out to be at their limit


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


def origin_of(job: GenerationJob, stored: StoredImage) -> str | None:
    """What the post's image started from (core.models.Post.origin)."""
    if job.source_kind is None:
        return None
    if stored.from_source:
        return "upload" if job.source_kind == "upload" else "image"
    return "prompt-only"


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

    async def start(self) -> None:
        await self.recover()
        self._stopping = False
        self._tasks = [
            asyncio.create_task(self._work(), name=f"generation-{i}") for i in range(self.config.concurrency)
        ]

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
            if pending:
                await self._release_cut_off()
        self._tasks = []

    async def _release_cut_off(self) -> None:
        """Jobs cut off by the stop go back in line at once, not after their lease, for another
        process (or the next start) to run."""
        try:
            async with self.sessions() as session:
                await session.execute(
                    update(GenerationJob)
                    .where(GenerationJob.status == "running", GenerationJob.worker == self.worker_id)
                    .values(status="queued", worker=None, lease_until=None, not_before=utcnow())
                )
                await session.commit()
        except Exception:
            log.exception("could not give back the jobs cut off by the stop; their leases will")

    def wake(self) -> None:
        """A job may be runnable: wake one idle worker. A worker that takes a job wakes the next one
        (see _work), so a burst of jobs fans out over the idle workers."""
        for signal in self._idle:
            if not signal.is_set():
                signal.set()
                return
        # Every idle worker is already due to look again (or none is idle): nothing is lost.

    async def _work(self) -> None:
        signal = asyncio.Event()
        self._idle.append(signal)  # idle while it looks too, so a wake-up during the look is not lost
        try:
            while not self._stopping:
                signal.clear()
                try:
                    job = await self._claim()
                except Exception:
                    log.exception("claiming a generation job failed")
                    job = None
                if job is None:
                    if self._stopping:  # stop() may have set the event while we were claiming
                        break
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(signal.wait(), self.config.poll_seconds)
                    continue
                self._idle.remove(signal)
                self.wake()  # more jobs may be waiting; a wake-up meant for us passes on too
                try:
                    # When it is done this worker looks again at once, which also finds a job
                    # that waited for this person's slot.
                    await self._process_renewing(job)
                except Exception:
                    # A bug or a lost database must not end this worker: the job goes back in line.
                    log.exception("generation job %s crashed its worker; queueing it again", job.id)
                    await self._requeue_after_crash(job)
                finally:
                    self._idle.append(signal)
        finally:
            self._idle.remove(signal)

    async def _claim(self) -> GenerationJob | None:
        async with self._claim_lock, self.sessions() as session:
            await session.connection()
            full: set[int] = set()  # people found at their limit under their row's lock
            for _ in range(CLAIM_TRIES):
                # The clock is read after waiting for the lock and a connection, so a job queued during
                # that wait (stamped not_before = its enqueue time) is already due.
                now = utcnow()
                candidate = (await session.execute(self._candidates(now, full))).first()
                if candidate is None:
                    break
                job_id, person_id = candidate
                if await self._person_full(session, person_id, job_id, now):
                    full.add(person_id)
                    await session.rollback()  # let go of the rows locked for this try
                    continue
                job = await session.scalar(
                    update(GenerationJob)
                    .where(GenerationJob.id == job_id, self._claimable(now))
                    .values(
                        status="running",
                        worker=self.worker_id,
                        lease_until=now + timedelta(seconds=self.config.lease),
                        attempts=GenerationJob.attempts + 1,
                    )
                    .returning(GenerationJob)
                    .execution_options(synchronize_session=False)
                )
                if job is not None:
                    await self.on_progress(session, job)
                    await session.commit()
                    self.on_committed()
                    return job
                await session.rollback()
            await session.commit()
        return None

    @staticmethod
    def _claimable(now: datetime) -> ColumnElement[bool]:
        """Queued and due, or running under a lease that has passed (its worker died)."""
        expired = or_(GenerationJob.lease_until.is_(None), GenerationJob.lease_until < now)
        return or_(
            and_(GenerationJob.status == "queued", GenerationJob.not_before <= now),
            and_(GenerationJob.status == "running", expired),
        )

    def _live(self, now: datetime) -> ColumnElement[bool]:
        return and_(GenerationJob.status == "running", GenerationJob.lease_until >= now)

    def _candidates(self, now: datetime, full: set[int]) -> Select[int, int]:
        busy = (
            select(GenerationJob.person_id)
            .where(self._live(now))
            .group_by(GenerationJob.person_id)
            .having(func.count() >= self.config.per_person)
        )
        # Columns, not the entity: a job loaded here would stay stale in the session after the UPDATE.
        return (
            select(GenerationJob.id, GenerationJob.person_id)
            .where(self._claimable(now), GenerationJob.person_id.not_in(busy), GenerationJob.person_id.not_in(full))
            .order_by(GenerationJob.id)
            .limit(1)
            # PostgreSQL: pass over the rows other processes are claiming; SQLite renders no lock.
            .with_for_update(skip_locked=True, of=GenerationJob)
        )

    async def _person_full(self, session: AsyncSession, person_id: int, job_id: int, now: datetime) -> bool:
        """The per-person limit as a database rule: the person's row is locked (PostgreSQL) until this
        claim commits, so two processes claiming for one person count one after the other."""
        await session.execute(select(Person.id).where(Person.id == person_id).with_for_update())
        running = await session.scalar(
            select(func.count())
            .select_from(GenerationJob)
            .where(GenerationJob.person_id == person_id, GenerationJob.id != job_id, self._live(now))
        )
        return int(running or 0) >= self.config.per_person

    async def _process_renewing(self, job: GenerationJob) -> None:
        """Run the job while renewing its lease, so no other worker takes it over while it lives."""
        done = asyncio.Event()
        renewing = asyncio.create_task(self._renew(job, done), name=f"lease-{job.id}")
        try:
            await self._process(job)
        finally:
            done.set()
            await asyncio.wait([renewing])  # not cancelled: a cancel could cut a commit short

    async def _renew(self, job: GenerationJob, done: asyncio.Event) -> None:
        while not done.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), self.config.renew_seconds)
            if done.is_set():
                return
            try:
                async with self.sessions() as session:
                    result = await session.execute(
                        update(GenerationJob)
                        .where(*self._owned(job))
                        .values(lease_until=utcnow() + timedelta(seconds=self.config.lease))
                    )
                    await session.commit()
                if rowcount(result) == 0:
                    log.warning("generation job %s was taken over by another worker", job.id)
                    return
            except Exception:  # the job goes on; a lapsed lease costs at most a result dropped
                log.exception("could not renew the lease of generation job %s", job.id)

    async def _process(self, job: GenerationJob) -> None:
        if self.breaker is not None and not self.breaker.allow():
            await self._requeue(job, self.breaker.reopens_at or utcnow() + timedelta(seconds=30), undo_attempt=True)
            return
        outcome: BaseException | None = None
        try:
            async with self.sessions() as session:
                author = await session.scalar(select(Person.handle).where(Person.id == job.person_id)) or ""
            source = await self._source(job)
            stored = await asyncio.wait_for(
                self.images.create(job.prompt, job.seed, job.aspect, author, source), self.config.timeout + 5
            )
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
            await self._complete(job, stored)
        elif isinstance(outcome, GenerationError):
            await self._failed(job, str(outcome), retryable=outcome.retryable, retry_after=outcome.retry_after)
        else:
            await self._failed(job, "Something went wrong while making the image.", retryable=True)

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

    async def _complete(self, job: GenerationJob, stored: StoredImage) -> None:
        turn = self._claim_lock if self._one_writer else contextlib.nullcontext()
        async with turn, self.sessions() as session:
            # Read through the job's row, not the copy loaded at claim time: a merge of two accounts
            # (core.merging) may have moved the job to another person meanwhile.
            author = await session.scalar(
                select(Person)
                .join(GenerationJob, GenerationJob.person_id == Person.id)
                .where(GenerationJob.id == job.id)
            )
            parent = await session.get(Post, job.parent_id) if job.parent_id else None
            if author is None:
                return
            post = await posts.create_post(
                session,
                author,
                job.prompt,
                stored.image,
                stored.path,
                parent=parent,
                visibility=job.visibility,
                origin=origin_of(job, stored),
            )
            unsigned = await self._sign(session, post, author.handle, stored)
            finished = await session.scalar(
                update(GenerationJob)
                .where(*self._owned(job))
                .values(status="done", post_id=post.id, finished_at=utcnow(), error=None, lease_until=None)
                .returning(GenerationJob)
                .execution_options(synchronize_session=False)
            )
            if finished is None:
                # Another worker took this job over (a restart while we ran): its post is the one.
                await session.rollback()
                log.warning("generation job %s was taken over; dropping our result", job.id)
                return
            await self.on_progress(session, finished)
            if parent is not None and post.is_public:  # a private remix is not the parent author's news
                await self._tell_ancestors(session, post, parent)
            if post.is_public:
                await self.on_published(session, post)
            await session.commit()
        if unsigned is not None:
            await self.images.media.delete(unsigned)
        self.on_committed()

    async def _sign(self, session: AsyncSession, post: Post, handle: str, stored: StoredImage) -> str | None:
        """Give the post its signed image (the signature names the post, so it comes after the insert);
        returns the unsigned file when no post uses it any more."""
        if self.sign is None:
            return None
        media, sign = self.images.media, self.sign
        data = await asyncio.to_thread(media.path(stored.path).read_bytes)
        signed = await asyncio.to_thread(sign, data, post, handle, stored.pixels)
        if signed == data:
            return None
        post.image_path = await media.save(signed, stored.image.extension)
        await session.flush()
        shared = await session.scalar(select(Post.id).where(Post.image_path == stored.path).limit(1))
        return stored.path if shared is None else None

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
                await self.on_progress(session, failed)
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

    async def idle(self) -> bool:
        async with self.sessions() as session:
            active = await session.scalar(
                select(GenerationJob.id).where(GenerationJob.status.in_(("queued", "running"))).limit(1)
            )
        return active is None
