"""The generation queue: workers that turn persisted jobs into posts.

A job is claimed with a conditional UPDATE (queued -> running, stamped with this worker's id) and
completed in one transaction that creates the post and marks the job done only if this worker
still owns it, so a retry or a restart never makes two posts for one request. Failures that may
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

from sqlalchemy import ColumnElement, func, select, update
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
        """Queue again the jobs a crash left running. This assumes one generation process at a time;
        a second one would only duplicate the work, never the post (see _complete)."""
        async with self.sessions() as session:
            result = await session.execute(
                update(GenerationJob)
                .where(GenerationJob.status == "running")
                .values(status="queued", worker=None, not_before=utcnow())
            )
            await session.commit()
        count = rowcount(result)
        if count:
            log.info("requeued %d generation jobs left running by a crash", count)
        return count

    async def stop(self, grace: float = 5.0) -> None:
        """Stop taking jobs; jobs still running after the grace period are cut off and will be
        queued again by the next start."""
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
        self._tasks = []

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
                    await self._process(job)
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
            # The clock is read after waiting for the lock and a connection, so a job queued during
            # that wait (stamped not_before = its enqueue time) is already due.
            now = utcnow()
            busy = (
                select(GenerationJob.person_id)
                .where(GenerationJob.status == "running")
                .group_by(GenerationJob.person_id)
                .having(func.count() >= self.config.per_person)
            )
            due = (
                select(GenerationJob.id)
                .where(
                    GenerationJob.status == "queued",
                    GenerationJob.not_before <= now,
                    GenerationJob.person_id.not_in(busy),
                )
                .order_by(GenerationJob.id)
                .limit(1)
            )
            job = await session.scalar(
                update(GenerationJob)
                .where(GenerationJob.id.in_(due.scalar_subquery()), GenerationJob.status == "queued")
                .values(status="running", worker=self.worker_id, attempts=GenerationJob.attempts + 1)
                .returning(GenerationJob)
                .execution_options(synchronize_session=False)
            )
            if job is not None:
                await self.on_progress(session, job)
            await session.commit()
        if job is not None:
            self.on_committed()
        return job

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
                .values(status="done", post_id=post.id, finished_at=utcnow(), error=None)
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
            log.info("generation job %s: %s; retrying in %.1f s", job.id, message, delay)
            await self._requeue(job, utcnow() + timedelta(seconds=delay), error=message)
            return
        final = message if not retryable else f"{message} {gave_up(job.attempts)}"
        async with self.sessions() as session:
            result = await session.execute(
                update(GenerationJob)
                .where(*self._owned(job))
                .values(status="failed", error=final + QUOTA_NOTE, finished_at=utcnow())
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
                .values(status="queued", worker=None, not_before=when, error=error, attempts=attempts)
            )
            await session.commit()

    async def _requeue_after_crash(self, job: GenerationJob) -> None:
        try:
            await self._requeue(job, utcnow() + timedelta(seconds=backoff(job.attempts, self.config.backoff_base)))
        except Exception:
            log.exception("could not queue job %s again; the next start will", job.id)

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
