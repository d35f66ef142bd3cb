"""Telling people what happened to them (follows, likes, remixes), in batches.

Events are recorded as they happen. A periodic pass sends each person at most one message per
interval, summarising everything since the last one ("@bob and 3 others liked #12"), on the
platform where they were last active, outside their quiet hours, through the outbox.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, delete, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core import outbox
from core.config import Settings
from core.db import rowcount
from core.feed.localtime import in_quiet_hours, zone_of
from core.feed.targets import reachable_targets
from core.models import Notification, Person, table

CHUNK = 500


async def record(
    session: AsyncSession, *, recipient_id: int, actor_id: int, kind: str, post_id: int | None = None
) -> None:
    """Nobody is notified of their own actions."""
    if recipient_id != actor_id:
        event = {"recipient_id": recipient_id, "actor_id": actor_id, "kind": kind, "post_id": post_id}
        await session.execute(_RECORD, event)


async def withdraw(session: AsyncSession, *, recipient_id: int, actor_id: int, kind: str, post_id: int | None) -> None:
    """An unlike or unfollow before the batch went out: the event is no longer news."""
    event = {"recipient_id": recipient_id, "actor_id": actor_id, "kind": kind}
    if post_id is None:
        await session.execute(_WITHDRAW_UNPOSTED, event)
    else:
        await session.execute(_WITHDRAW, {**event, "post_id": post_id})


# Recorded and withdrawn on every like and follow: built once, on the table.
_notifications = table(Notification)
_RECORD = insert(_notifications)
_UNBATCHED = delete(_notifications).where(
    _notifications.c.recipient_id == bindparam("recipient_id"),
    _notifications.c.actor_id == bindparam("actor_id"),
    _notifications.c.kind == bindparam("kind"),
    _notifications.c.batched_at.is_(None),
)
_WITHDRAW = _UNBATCHED.where(_notifications.c.post_id == bindparam("post_id"))
_WITHDRAW_UNPOSTED = _UNBATCHED.where(_notifications.c.post_id.is_(None))


@dataclass(frozen=True, slots=True)
class Event:
    kind: str
    actor: str
    post_id: int | None


def _people(handles: list[str]) -> str:
    unique = list(dict.fromkeys(handles))
    first = f"@{unique[0]}"
    if len(unique) == 1:
        return first
    if len(unique) == 2:
        return f"{first} and @{unique[1]}"
    return f"{first} and {len(unique) - 1} others"


def summarise(events: list[Event]) -> list[str]:
    """One line per kind and post, newest actor first."""
    groups: dict[tuple[str, int | None], list[str]] = defaultdict(list)
    for event in reversed(events):
        groups[(event.kind, event.post_id)].append(event.actor)
    lines = []
    for (kind, post_id), actors in groups.items():
        who = _people(actors)
        if kind == "follow":
            lines.append(f"{who} followed you")
        elif kind == "like":
            lines.append(f"{who} liked #{post_id}")
        elif kind == "report":
            lines.append(f"🚩 {who} reported #{post_id}")
        elif kind == "request":
            lines.append(f"{who} asked to follow you")
        elif kind == "accepted":
            lines.append(f"{who} accepted your follow request")
        elif kind == "comment":
            lines.append(f"{who} commented on #{post_id}")
        elif kind == "remix2":
            lines.append(f"{who} remixed a remix of #{post_id}")
        else:
            lines.append(f"{who} remixed #{post_id}")
    return lines


async def _pending(session: AsyncSession, recipients: list[int]) -> dict[int, list[tuple[int, Event]]]:
    rows = await session.execute(
        select(Notification.id, Notification.recipient_id, Notification.kind, Notification.post_id, Person.handle)
        .join(Person, Person.id == Notification.actor_id)
        .where(Notification.recipient_id.in_(recipients), Notification.batched_at.is_(None))
        .order_by(Notification.id)
    )
    events: dict[int, list[tuple[int, Event]]] = defaultdict(list)
    for event_id, recipient, kind, post_id, handle in rows:
        events[recipient].append((event_id, Event(kind, handle, post_id)))
    return events


async def batch_pass(sessions: async_sessionmaker[AsyncSession], settings: Settings, now: datetime) -> int:
    """Queue one summary for each person who is due one; returns how many were queued."""
    cutoff = now - timedelta(minutes=settings.notify_interval_minutes)
    queued, after = 0, 0
    while True:
        async with sessions() as session:
            people = list(
                await session.scalars(
                    select(Person)
                    .where(
                        Person.id > after,
                        Person.id.in_(select(Notification.recipient_id).where(Notification.batched_at.is_(None))),
                        or_(Person.last_notified_at.is_(None), Person.last_notified_at <= cutoff),
                    )
                    .order_by(Person.id)
                    .limit(CHUNK)
                )
            )
            if not people:
                return queued
            after = people[-1].id
            queued += await _batch_chunk(session, settings, people, now)
            await session.commit()


async def _take_turn(session: AsyncSession, person_id: int, now: datetime, cutoff: datetime) -> bool:
    """At most one message per interval, also when two processes batch at once: the turn is taken
    with a conditional UPDATE, which waits for the other pass's commit and then finds the turn gone."""
    result = await session.execute(
        update(Person)
        .where(Person.id == person_id, or_(Person.last_notified_at.is_(None), Person.last_notified_at <= cutoff))
        .values(last_notified_at=now)
        .execution_options(synchronize_session=False)
    )
    return rowcount(result) == 1


async def _batch_chunk(session: AsyncSession, settings: Settings, people: list[Person], now: datetime) -> int:
    ids = [p.id for p in people]
    cutoff = now - timedelta(minutes=settings.notify_interval_minutes)
    events = await _pending(session, ids)
    targets = await reachable_targets(session, ids)
    queued = 0
    for person in people:
        pending = events.get(person.id, [])
        if not pending:
            continue
        target = targets.get(person.id)
        if person.notify_enabled and target is not None:
            if in_quiet_hours(now, zone_of(person, settings), settings.quiet_hours):
                continue  # they stay pending until the quiet hours end
            if not await _take_turn(session, person.id, now, cutoff):
                continue  # another pass told them since we looked; what is left waits for the next turn
            lines = summarise([event for _, event in pending])
            post_ids = list(dict.fromkeys(e.post_id for _, e in pending if e.post_id is not None))[:3]
            reported = list(dict.fromkeys(e.post_id for _, e in pending if e.kind == "report" and e.post_id))[:5]
            asking = list(dict.fromkeys(e.actor for _, e in pending if e.kind == "request"))[:5]
            await outbox.add(
                session,
                key=f"notify:{person.id}:{pending[-1][0]}",
                platform=target.platform,
                chat_id=target.chat_id,
                kind="text",
                payload={
                    "text": "🔔 " + "\n🔔 ".join(lines),
                    "buttons": ([[[f"#{post_id}", f"post {post_id}"] for post_id in post_ids]] if post_ids else [])
                    + [[[f"✅ Keep #{p}", f"keep {p}"], [f"🗑 Remove #{p}", f"remove {p}"]] for p in reported]
                    + [[[f"✅ Approve @{h}", f"approve {h}"], [f"✖ Decline @{h}", f"decline {h}"]] for h in asking],
                },
                person_id=person.id,
            )
            queued += 1
        # Sent, or not wanted (turned off, nowhere to send): either way these events are done.
        await session.execute(
            update(Notification)
            .where(Notification.id.in_([event_id for event_id, _ in pending]), Notification.batched_at.is_(None))
            .values(batched_at=now)
        )
    return queued
