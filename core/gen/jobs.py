"""Accepting a generation request: cooldown, daily quota and idempotency, then a persisted job."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    String,
    Update,
    bindparam,
    func,
    literal_column,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.sql.dml import ReturningInsert

from core.cards import plural
from core.db import on_postgres, rowcount
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
class Queued:
    """What enqueue made: the job, and the jobs queued ahead of it then (None: a repeated request's job,
    found as it is)."""

    job: GenerationJob
    ahead: int | None


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


def _queued_before(job: Any, bound: ColumnElement[int]) -> Select[int]:
    """How many jobs wait in line ahead of the job whose id is `bound`; `job`: GenerationJob or an alias."""
    return select(func.count()).select_from(job).where(job.status == "queued", job.id < bound)


_AHEAD = _queued_before(GenerationJob, bindparam("job", type_=Integer))


def _turn_taken(cooled: bool, counts_quota: bool) -> Update:
    """The person's row stamped with the request's time, if their cooldown is over (when there is one) and,
    with `counts_quota`, if today's jobs, the new one among them, are within the quota."""
    due = (
        or_(Person.last_generation_at.is_(None), Person.last_generation_at <= bindparam("cutoff", type_=UTCDateTime()))
        if cooled
        else true()
    )
    within = _USED_TODAY.scalar_subquery() <= bindparam("quota", type_=Integer) if counts_quota else true()
    return (
        update(Person)
        .where(Person.id == bindparam("person", type_=Integer), due, within)
        .values(last_generation_at=bindparam("now", type_=UTCDateTime()))
        .execution_options(synchronize_session=False)
    )


_TAKE_TURN = {(cooled, counts): _turn_taken(cooled, counts) for cooled in (False, True) for counts in (False, True)}


_EARLIER = aliased(GenerationJob)
# In the new job's RETURNING: the jobs waiting ahead of it, for the reply's place in line (queue_position).
# The new row's id is named as SQL text: SQLAlchemy neither correlates a subquery of an INSERT's RETURNING
# nor qualifies its columns there on SQLite, where an unqualified `id` would be the subquery's own.
_AHEAD_OF_NEW = _queued_before(_EARLIER, literal_column(f"{GenerationJob.__tablename__}.id", Integer)).scalar_subquery()


@functools.cache
def _new_job(postgres: bool) -> ReturningInsert[GenerationJob, int]:
    """The job's INSERT, which a repeat of its idempotency key leaves undone; the new row comes back in its
    RETURNING, with the count of jobs ahead of it. Built once per dialect, the values passed as parameters."""
    insert = pg_insert if postgres else sqlite_insert
    return insert(GenerationJob).on_conflict_do_nothing().returning(GenerationJob, _AHEAD_OF_NEW)


async def quota_status(session: AsyncSession, person_id: int, limit: int | None, zone: str) -> QuotaStatus:
    """Done today plus still in flight; failed jobs never count."""
    start = day_start(utcnow(), zone)
    used = await session.scalar(_USED_TODAY, {"person": person_id, "start": start})
    # Aware arithmetic on a ZoneInfo datetime is wall-clock: this is the next local midnight, DST or not.
    return QuotaStatus(int(used or 0), limit, start + timedelta(days=1))


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
) -> Queued:
    """Persist the job, or return the one this key already made (a repeated request). A refusal (the
    cooldown, the quota) raises UserError, and the caller's rollback takes the new row back out."""
    now = utcnow()
    # The INSERT first: a repeated request finds its job without touching the cooldown or the quota.
    row = (
        await session.execute(
            _new_job(on_postgres(session)),
            {
                "idempotency_key": key,
                "person_id": person.id,
                "prompt": request.prompt,
                "seed": request.seed,
                "aspect": request.aspect,
                "visibility": request.visibility,
                "parent_id": request.parent_id,
                "platform": request.platform,
                "chat_id": request.chat_id,
                "source_path": request.source_path,
                "source_kind": request.source_kind,
                "status": "queued",
                "attempts": 0,
                "not_before": now,
                "created_at": now,
            },
        )
    ).first()
    if row is None:
        found = await existing_job(session, key)
        assert found is not None, "a conflict on the key means its job exists"
        return Queued(found, None)
    job, ahead = row
    await _take_turn(session, person, quota=quota, cooldown=cooldown, zone=zone, now=now)
    return Queued(job, int(ahead))


async def _take_turn(
    session: AsyncSession, person: Person, *, quota: int | None, cooldown: float, zone: str, now: datetime
) -> None:
    """A conditional UPDATE of the person's row enforces the cooldown and, by locking the row until commit,
    serialises one person's concurrent requests so the quota count is exact. On SQLite, whose one writer
    runs a statement on the newest data, the count is in the UPDATE itself. PostgreSQL counts in a statement
    of its own after it: a subquery in the UPDATE would count with the snapshot the UPDATE began with, blind
    to a concurrent request that committed while it waited for the row."""
    counts_in_update = quota is not None and not on_postgres(session)
    start = day_start(now, zone)
    params = {
        "person": person.id,
        "now": now,
        "cutoff": now - timedelta(seconds=cooldown),
        "quota": quota,
        "start": start,
    }
    took = rowcount(await session.execute(_TAKE_TURN[(cooldown > 0, counts_in_update)], params)) == 1
    if not took:
        last = await session.scalar(select(Person.last_generation_at).where(Person.id == person.id))
        if cooldown > 0 and last is not None and last > now - timedelta(seconds=cooldown):
            wait = max(1, int((last + timedelta(seconds=cooldown) - now).total_seconds() + 0.999))
            raise UserError(f"Please wait {wait} s before your next image.")
    if quota is not None and (not took or not counts_in_update):
        status = await quota_status(session, person.id, quota, zone)
        if status.used > quota:  # the new job is counted
            raise UserError(
                f"You have used all {plural(quota, 'image')} for today. "
                f"More at {status.resets_at.strftime('%H:%M %Z')}; see /quota."
            )
    if not took:  # neither reason: the person's row went away meanwhile (a merge)
        raise UserError("Your image could not be queued right now; please try again.")


async def queue_position(session: AsyncSession, job: GenerationJob) -> int:
    """1 for the next job to start (a new job's is known from its INSERT: Queued.ahead)."""
    ahead = await session.scalar(_AHEAD, {"job": job.id})
    return int(ahead or 0) + 1
