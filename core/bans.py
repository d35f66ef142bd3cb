"""Bans: a banned person cannot generate, post, like, follow or report; their posts are held back
while the ban lasts (their gallery messages taken down, published again when it ends), their queued
generations are cancelled, and they are told once why and until when. A ban with a duration ends by
itself (the scheduler's pass, or their next command)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core import audit, gallery, outbox
from core.db import locked_in_id_order, on_postgres
from core.errors import UserError
from core.feed.targets import reachable_targets
from core.models import GenerationJob, Person, Post, utcnow
from core.visibility import BANNED, VISIBLE

FOREVER = datetime(9999, 1, 1, tzinfo=UTC)
# What a ban stops: making posts and acting on other people.
BANNED_FROM = frozenset({"imagine", "remix", "vary", "edit", "like", "comment", "follow", "report"})
DURATION_RE = re.compile(r"^([0-9]{1,4})([mhdw])$")
UNITS = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}
CANCELLED = "Cancelled: your account is banned."


def parse_duration(raw: str) -> timedelta | None:
    """`30m`, `12h`, `7d`, `2w`; None when the word is not a duration (it is then part of the reason).
    A word that starts with a digit was meant as one: a slip there (`5x`, `0m`) is refused rather
    than read as the reason of a ban for good."""
    word = raw.strip().lower()
    match = DURATION_RE.match(word)
    if match is None or int(match.group(1)) == 0:
        if word[:1].isdigit():
            raise UserError(f"{raw.strip()} is not a duration. Use minutes, hours, days or weeks: 30m, 12h, 7d, 2w.")
        return None
    return int(match.group(1)) * UNITS[match.group(2)]


def until_text(until: datetime) -> str:
    return "for good" if until >= FOREVER else f"until {until:%Y-%m-%d %H:%M} UTC"


def banned_line(person: Person) -> str:
    assert person.banned_until is not None
    why = f": {person.ban_reason}" if person.ban_reason else ""
    return f"Your account is banned {until_text(person.banned_until)}{why}."


async def ban(
    session: AsyncSession,
    admin: Person,
    target: Person,
    duration: timedelta | None,
    reason: str,
    galleries: list[tuple[str, str]],
) -> datetime:
    now = utcnow()
    until = FOREVER if duration is None else now + duration
    # The queued jobs before the person's row is written: a claim (core.gen.queue) locks a job, then its
    # person's row, so a ban holding the row while it waits for a claimed job deadlocked with the claim.
    # In ascending id on PostgreSQL, as a merge moves them (core.db.locked_in_id_order).
    queued = (GenerationJob.person_id == target.id, GenerationJob.status == "queued")
    await session.execute(
        update(GenerationJob)
        .where(locked_in_id_order(on_postgres(session), GenerationJob.id, *queued))
        .values(status="failed", error=CANCELLED, finished_at=now)
    )
    target.banned_until, target.ban_reason = until, reason[:255] or None
    await gallery.unlisting(session, galleries, Post.author_id == target.id)
    await session.execute(update(Post).where(Post.author_id == target.id, Post.status == VISIBLE).values(status=BANNED))
    await audit.record(
        session, actor_id=admin.id, action="ban", person_id=target.id, reason=f"{until_text(until)} {reason}".strip()
    )
    await _tell(session, target, f"ban:{target.id}:{int(now.timestamp())}")
    return until


async def unban(
    session: AsyncSession, target: Person, galleries: list[tuple[str, str]], *, admin: Person | None
) -> None:
    target.banned_until, target.ban_reason = None, None
    await session.execute(update(Post).where(Post.author_id == target.id, Post.status == BANNED).values(status=VISIBLE))
    await gallery.relisting(session, galleries, Post.author_id == target.id)
    await audit.record(
        session, actor_id=admin.id if admin else None, action="unban" if admin else "ban ended", person_id=target.id
    )


async def _tell(session: AsyncSession, target: Person, key: str) -> None:
    """Once, where they were last active; a refused command later says it again in one line."""
    found = (await reachable_targets(session, [target.id])).get(target.id)
    if found is None:
        return
    await outbox.add(
        session,
        key=key,
        platform=found.platform,
        chat_id=found.chat_id,
        kind="text",
        payload={"text": banned_line(target)},
        person_id=target.id,
    )


async def check(session: AsyncSession, person: Person, command: str, galleries: list[tuple[str, str]]) -> None:
    """Refuses what a ban stops; an ended ban is lifted here, so nobody waits for the scheduler."""
    if person.banned_until is None:
        return
    if ended(person):
        await unban(session, person, galleries, admin=None)
        return
    if command in BANNED_FROM:
        raise UserError(banned_line(person))


def ended(person: Person) -> bool:
    """A ban that has run out, still to be lifted (check does it on the person's next command)."""
    return person.banned_until is not None and person.banned_until <= utcnow()


async def lift_expired(
    sessions: async_sessionmaker[AsyncSession], now: datetime, galleries: list[tuple[str, str]]
) -> int:
    async with sessions() as session:
        ended = list(await session.scalars(select(Person).where(Person.banned_until <= now)))
        for person in ended:
            await unban(session, person, galleries, admin=None)
        await session.commit()
    return len(ended)
