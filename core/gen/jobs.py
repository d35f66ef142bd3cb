"""Accepting a generation request: cooldown, daily quota and idempotency, then a persisted job."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Integer, String, Update, bindparam, func, or_, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.cards import plural
from core.db import insert_ignore, rowcount
from core.errors import UserError
from core.models import GenerationJob, Person, UTCDateTime, utcnow

ACTIVE = ("queued", "running")


@dataclass(frozen=True, slots=True)
class JobRequest:
    prompt: str
    seed: int
    aspect: str
    visibility: str
    parent_id: int | None
    # The chat the request came from, where its result goes if no progress message was shown.
    platform: str | None = None
    chat_id: str | None = None
    # A picture to start from (media-relative path) and whose it is: "parent" or "upload".
    source_path: str | None = None
    source_kind: str | None = None


@dataclass(frozen=True, slots=True)
class QuotaStatus:
    used: int
    limit: int | None  # None: unlimited (admins)
    resets_at: datetime

    @property
    def left(self) -> int | None:
        return None if self.limit is None else max(0, self.limit - self.used)


def day_start(now: datetime, zone: str) -> datetime:
    local = now.astimezone(ZoneInfo(zone))
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


# The statements of a request, built once with their values as parameters: building a statement and its
# cache key cost about as much as SQLite spends running it, and /imagine sends five.
_USED_TODAY = (
    select(func.count())
    .select_from(GenerationJob)
    .where(
        GenerationJob.person_id == bindparam("person", type_=Integer),
        or_(
            GenerationJob.status.in_(ACTIVE),
            (GenerationJob.status == "done") & (GenerationJob.finished_at >= bindparam("start", type_=UTCDateTime())),
        ),
    )
)
_BY_KEY = select(GenerationJob).where(GenerationJob.idempotency_key == bindparam("key", type_=String))
_AHEAD = (
    select(func.count())
    .select_from(GenerationJob)
    .where(GenerationJob.status == "queued", GenerationJob.id < bindparam("job", type_=Integer))
)


def _cooldown_taken(cooled: bool) -> Update:
    """The person's row stamped with the request's time, if their cooldown is over (when there is one)."""
    now = bindparam("now", type_=UTCDateTime())
    due = (
        or_(Person.last_generation_at.is_(None), Person.last_generation_at <= bindparam("cutoff", type_=UTCDateTime()))
        if cooled
        else true()
    )
    return (
        update(Person)
        .where(Person.id == bindparam("person", type_=Integer), due)
        .values(last_generation_at=now)
        .execution_options(synchronize_session=False)
    )


_TAKE_COOLDOWN = {cooled: _cooldown_taken(cooled) for cooled in (False, True)}


async def quota_status(session: AsyncSession, person_id: int, limit: int | None, zone: str) -> QuotaStatus:
    """Done today plus still in flight; failed jobs never count."""
    start = day_start(utcnow(), zone)
    used = await session.scalar(_USED_TODAY, {"person": person_id, "start": start})
    # Aware arithmetic on a ZoneInfo datetime is wall-clock: this is the next local midnight, DST or not.
    return QuotaStatus(int(used or 0), limit, start + timedelta(days=1))


async def take_cooldown(session: AsyncSession, person: Person, cooldown: float) -> None:
    """A conditional UPDATE of the person's row: it enforces the cooldown and, by locking the row
    until commit, serialises one person's concurrent requests so the quota count below is exact."""
    now = utcnow()
    cutoff = now - timedelta(seconds=cooldown)
    result = await session.execute(_TAKE_COOLDOWN[cooldown > 0], {"person": person.id, "now": now, "cutoff": cutoff})
    if rowcount(result) == 0:
        last = await session.scalar(select(Person.last_generation_at).where(Person.id == person.id))
        wait = max(1, int(((last or now) + timedelta(seconds=cooldown) - now).total_seconds() + 0.999))
        raise UserError(f"Please wait {wait} s before your next image.")


async def existing_job(session: AsyncSession, key: str) -> GenerationJob | None:
    return await session.scalar(_BY_KEY, {"key": key})


async def enqueue(
    session: AsyncSession,
    person: Person,
    request: JobRequest,
    key: str,
    *,
    quota: int | None,
    cooldown: float,
    zone: str,
) -> GenerationJob:
    """Persist the job, or return the one this key already made (a repeated request)."""
    found = await existing_job(session, key)
    if found is not None:
        return found
    await take_cooldown(session, person, cooldown)
    if quota is not None:
        status = await quota_status(session, person.id, quota, zone)
        if status.used >= quota:
            raise UserError(
                f"You have used all {plural(quota, 'image')} for today. "
                f"More at {status.resets_at.strftime('%H:%M %Z')}; see /quota."
            )
    # The new row comes back from the INSERT; none comes back when a repeated request got in first.
    job = await session.scalar(
        insert_ignore(
            session,
            GenerationJob,
            idempotency_key=key,
            person_id=person.id,
            prompt=request.prompt,
            seed=request.seed,
            aspect=request.aspect,
            visibility=request.visibility,
            parent_id=request.parent_id,
            platform=request.platform,
            chat_id=request.chat_id,
            source_path=request.source_path,
            source_kind=request.source_kind,
            status="queued",
            attempts=0,
            not_before=utcnow(),
            created_at=utcnow(),
        ).returning(GenerationJob)
    )
    if job is None:
        job = await existing_job(session, key)
    assert job is not None
    return job


async def queue_position(session: AsyncSession, job: GenerationJob) -> int:
    """1 for the next job to start."""
    ahead = await session.scalar(_AHEAD, {"job": job.id})
    return int(ahead or 0) + 1
