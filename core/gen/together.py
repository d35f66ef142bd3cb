"""Finished generation jobs written together.

When a wave of images comes back at once, every completion used to wait for the writer's turn (SQLite's
one writer; on PostgreSQL this process's claim turn), then open its session and send its own four
statements and commit. Now the completions
that are waiting when the turn comes are written in one transaction: one SELECT of their authors, one
INSERT of their posts (one flush), one UPDATE of their jobs, the result deliveries, one commit. Anything
out of the ordinary (an author gone, renamed or merged since the file was signed, a job another worker
took over, a post id taken) is left to the path of one completion at a time, which knows those cases:
the whole batch is rolled back and each completion goes alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import bindparam, case, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import ReturningUpdate

from core import posts
from core.db import locked_in_id_order, on_postgres
from core.gen.service import StoredImage
from core.models import GenerationJob, Person, Post, utcnow

# The jobs whose state changed in the session's transaction, for their progress messages and results
# (core.app.Core._job_progress); the queue's hooks, declared here because a batch calls them too.
JobHook = Callable[[AsyncSession, Sequence[GenerationJob]], Awaitable[None]]
PostHook = Callable[[AsyncSession, Post], Awaitable[None]]

# Each job's author, read through the job's row: a merge of two accounts (core.merging) may have moved
# the job to another person since it was claimed.
_AUTHORS = (
    select(GenerationJob.id, Person)
    .join(Person, Person.id == GenerationJob.person_id)
    .where(GenerationJob.id.in_(bindparam("jobs", expanding=True)))
)


# A job claimed by a worker, and its author's handle.
Claimed = tuple[GenerationJob, str]


async def authors(session: AsyncSession, job_ids: list[int]) -> dict[int, Person]:
    """Each job's author, by job id; a job whose author is gone (and the job with them) is missing."""
    return {job_id: person for job_id, person in await session.execute(_AUTHORS, {"jobs": job_ids})}


def origin_of(job: GenerationJob, stored: StoredImage) -> str | None:
    """What the post's image started from (core.models.Post.origin)."""
    if job.source_kind is None:
        return None
    if stored.from_source:
        return "upload" if job.source_kind == "upload" else "image"
    return "prompt-only"


def post_for(job: GenerationJob, stored: StoredImage, author: Person, parent: Post | None = None) -> Post:
    """The post a finished job makes, not yet written (core.posts.new_post)."""
    return posts.new_post(
        author,
        job.prompt,
        stored.image,
        stored.path,
        parent=parent,
        visibility=job.visibility,
        origin=origin_of(job, stored),
        post_id=stored.post_id,
    )


def _loop_future() -> asyncio.Future[bool]:
    return asyncio.get_running_loop().create_future()


@dataclass(frozen=True, slots=True)
class Next:
    """A worker's next job and its author's handle, claimed in a batch's transaction; or None, nothing
    claimable then, with `wakes`, the queue's count of wake-ups when it looked: a job queued since then
    has woken the queue, and the worker looks again (core.gen.queue)."""

    claimed: Claimed | None
    wakes: int


@dataclass(slots=True)
class Finished:
    """A completion waiting to be written: a job whose image is stored, signed for its reserved post id."""

    job: GenerationJob
    stored: StoredImage
    handle: str  # the author's handle the file was signed with
    # True once written with its batch; False: it goes alone (core.gen.queue).
    written: asyncio.Future[bool] = field(default_factory=_loop_future)
    # What the batch's transaction found for the worker's next turn; None: it did not look (core.gen.queue).
    next: Next | None = None


class GoAlone(Exception):
    """The batch holds a case the one-at-a-time path handles: roll back, and each completion goes alone."""


def fits(job: GenerationJob, stored: StoredImage) -> bool:
    """Whether a completion may be written in a batch: a remix (a parent's count, its authors' news) and
    an unsigned image (its post id not reserved) go alone."""
    return job.parent_id is None and stored.post_id is not None


async def write(
    session: AsyncSession, batch: list[Finished], owner: str, on_progress: JobHook, on_published: PostHook
) -> None:
    """The batch's posts and its jobs marked done, in the session's transaction; the caller commits.
    Raises GoAlone, with nothing to keep, when any completion needs the one-at-a-time path."""
    by_job = await authors(session, [f.job.id for f in batch])
    if any(f.job.id not in by_job or by_job[f.job.id].handle != f.handle for f in batch):
        raise GoAlone("an author is gone or renamed since the image was signed")
    made = [post_for(f.job, f.stored, by_job[f.job.id]) for f in batch]
    session.add_all(made)
    await session.flush()  # one INSERT for the batch: their ids are given, nothing is read back per row
    post_of = {f.job.id: post.id for f, post in zip(batch, made, strict=True)}
    done = (await session.scalars(_mark_done(post_of, owner, on_postgres(session)))).all()
    if len(done) != len(batch):
        raise GoAlone("a job was taken over by another worker")
    await on_progress(session, done)
    for post in made:
        if post.is_public:
            await on_published(session, post)


def _mark_done(post_of: dict[int, int], owner: str, postgres: bool) -> ReturningUpdate[GenerationJob]:
    """One UPDATE for the batch's jobs, each given its post; only those this worker still holds. On
    PostgreSQL its rows are locked in ascending id, as the queue's renewer locks them: its plan may visit
    them in physical order (a seq scan, a bitmap scan), and the two would deadlock."""
    ours = (GenerationJob.id.in_(list(post_of)), GenerationJob.status == "running", GenerationJob.worker == owner)
    return (
        update(GenerationJob)
        .where(locked_in_id_order(postgres, GenerationJob.id, *ours))
        .values(
            status="done",
            post_id=case(post_of, value=GenerationJob.id),
            finished_at=utcnow(),
            error=None,
            lease_until=None,
        )
        .returning(GenerationJob)
        .execution_options(synchronize_session=False)
    )
