"""/stats: the numbers an operator looks at first, each one cheap query. The queue, the processes and
the outbox backlog follow, rendered by core.health as `python -m bots status` shows them."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import distinct, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.models import Delivery, GenerationJob, Identity, Person, Post, Report, utcnow

CAUSES_SHOWN = 3


async def _count(session: AsyncSession, query: object) -> int:
    return int(await session.scalar(query) or 0)  # type: ignore[call-overload]


async def report(session: AsyncSession, now: datetime | None = None) -> str:
    now = now or utcnow()
    day, week = now - timedelta(days=1), now - timedelta(days=7)
    people = await _count(session, select(func.count()).select_from(Person))
    active_day = await _count(
        session, select(func.count(distinct(Identity.person_id))).where(Identity.last_seen_at >= day)
    )
    active_week = await _count(
        session, select(func.count(distinct(Identity.person_id))).where(Identity.last_seen_at >= week)
    )
    posts = await _count(session, select(func.count()).where(Post.created_at >= day))
    jobs = await _count(session, select(func.count()).where(GenerationJob.created_at >= day))
    failed = list(
        await session.execute(
            select(GenerationJob.error, func.count())
            .where(GenerationJob.created_at >= day, GenerationJob.status == "failed")
            .group_by(GenerationJob.error)
            .order_by(func.count().desc())
            .limit(CAUSES_SHOWN)
        )
    )
    failures = sum(int(n) for _, n in failed)
    sent = dict(
        (kind, int(n))
        for kind, n in await session.execute(
            select(Delivery.kind, func.count())
            .where(Delivery.status == "sent", Delivery.sent_at >= day)
            .group_by(Delivery.kind)
        )
    )
    troubled = dict(
        (status, int(n))
        for status, n in await session.execute(
            select(Delivery.status, func.count())
            .where(Delivery.status.in_(("failed", "uncertain")))
            .group_by(Delivery.status)
        )
    )
    open_reports = await _count(
        session, select(func.count(distinct(Report.post_id))).where(Report.resolved_at.is_(None))
    )
    causes = "; ".join(f"{(error or 'unknown')[:60]} ×{n}" for error, n in failed)
    lines = [
        "📊 Last 24 hours",
        f"People: {people} ({active_day} active today, {active_week} this week)",
        f"Posts today: {posts}",
        f"Generations today: {jobs}, {failures} failed" + (f" ({causes})" if causes else ""),
        f"Sent today: {sent.get('digest', 0)} digests, {sent.get('text', 0)} notifications and messages",
        f"Deliveries: {troubled.get('failed', 0)} undelivered, {troubled.get('uncertain', 0)} uncertain",
        f"Open reports: {open_reports}",
    ]
    return "\n".join(lines)
