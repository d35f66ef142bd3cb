"""The audit trail: every admin action, report decision, ban and moderation refusal, kept for good
(no purge touches this table)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from core.models import AuditEntry, Person

LIST_LIMIT = 20
REASON_MAX = 255


async def record(
    session: AsyncSession,
    *,
    actor_id: int | None,
    action: str,
    person_id: int | None = None,
    post_id: int | None = None,
    reason: str = "",
) -> None:
    session.add(
        AuditEntry(
            actor_id=actor_id,
            action=action,
            target_person_id=person_id,
            target_post_id=post_id,
            reason=reason[:REASON_MAX],
        )
    )


@dataclass(frozen=True, slots=True)
class Line:
    at: datetime
    actor: str | None
    action: str
    person: str | None
    post_id: int | None
    reason: str

    def render(self) -> str:
        who = f"@{self.actor}" if self.actor else "system"
        target = " ".join(t for t in (f"@{self.person}" if self.person else "", self.post_target) if t)
        why = f" — {self.reason}" if self.reason else ""
        return f"{self.at:%Y-%m-%d %H:%M} {who} {self.action} {target}".rstrip() + why

    @property
    def post_target(self) -> str:
        return f"#{self.post_id}" if self.post_id is not None else ""


_ACTOR = aliased(Person, name="audit_actor")
_TARGET = aliased(Person, name="audit_target")


async def latest(session: AsyncSession, person_id: int | None = None, limit: int = LIST_LIMIT) -> list[Line]:
    """Newest first; with `person_id`, only entries by or about that person."""
    query = (
        select(AuditEntry, _ACTOR.handle, _TARGET.handle)
        .outerjoin(_ACTOR, _ACTOR.id == AuditEntry.actor_id)
        .outerjoin(_TARGET, _TARGET.id == AuditEntry.target_person_id)
    )
    if person_id is not None:
        query = query.where(or_(AuditEntry.actor_id == person_id, AuditEntry.target_person_id == person_id))
    rows = await session.execute(query.order_by(AuditEntry.id.desc()).limit(limit))
    return [
        Line(entry.created_at, actor, entry.action, target, entry.target_post_id, entry.reason)
        for entry, actor, target in rows
    ]
