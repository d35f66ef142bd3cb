"""Reports of posts: one per person per post; REPORT_HIDE_THRESHOLD different people put the post
under review (out of every public place) until an admin keeps or removes it. Admins hear of each
newly reported post through the batched notifications, with keep / remove buttons."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.admins import CONSOLE, Admins
from core.db import insert_ignore, rowcount
from core.feed import notifications
from core.models import Identity, Person, Post, Report
from core.visibility import REVIEW, VISIBLE

LIST_LIMIT = 10


async def report(
    session: AsyncSession, reporter: Person, post: Post, reason: str, threshold: int, admins: Admins
) -> bool:
    """Records the report; False when this person had already reported the post."""
    already_open = await open_count(session, post.id)
    inserted = await session.execute(
        insert_ignore(session, Report, post_id=post.id, reporter_id=reporter.id, reason=reason[:255])
    )
    if rowcount(inserted) == 0:
        return False
    if already_open == 0:  # newly reported: the admins hear of it (once, until it is decided)
        for admin_id in await admin_ids(session, admins):
            await notifications.record(
                session, recipient_id=admin_id, actor_id=reporter.id, kind="report", post_id=post.id
            )
    if already_open + 1 >= threshold and post.status == VISIBLE:
        post.status = REVIEW
    return True


async def open_count(session: AsyncSession, post_id: int) -> int:
    count = await session.scalar(select(func.count()).where(Report.post_id == post_id, Report.resolved_at.is_(None)))
    return int(count or 0)


async def admin_ids(session: AsyncSession, admins: Admins) -> list[int]:
    """The people who are admins: by configured platform id, console handle, or promotion."""
    accounts = []
    for platform_id in admins.platform_ids:
        platform, _, user = platform_id.partition(":")
        accounts.append(and_(Identity.platform == platform, Identity.platform_user_id == user))
    if admins.console_handles:
        accounts.append(and_(Identity.platform == CONSOLE, Identity.platform_user_id.in_(admins.console_handles)))
    configured = select(Identity.person_id).where(or_(*accounts)) if accounts else None
    query = select(Person.id).where(
        or_(Person.promoted_admin.is_(True), Person.id.in_(configured))
        if configured is not None
        else Person.promoted_admin.is_(True)
    )
    return list(await session.scalars(query.order_by(Person.id)))


@dataclass(frozen=True, slots=True)
class OpenReport:
    post_id: int
    author: str
    first_at: datetime
    reasons: list[str]
    count: int


async def open_reports(session: AsyncSession, limit: int = LIST_LIMIT) -> list[OpenReport]:
    """Posts with open reports, the longest waiting first."""
    first = func.min(Report.created_at).label("first")
    posts = (
        await session.execute(
            select(Report.post_id, Person.handle, first, func.count())
            .join(Post, Post.id == Report.post_id)
            .join(Person, Person.id == Post.author_id)
            .where(Report.resolved_at.is_(None))
            .group_by(Report.post_id, Person.handle)
            .order_by(first, Report.post_id)
            .limit(limit)
        )
    ).all()
    ids = [row[0] for row in posts]
    reasons: dict[int, list[str]] = {}
    for post_id, reason in await session.execute(
        select(Report.post_id, Report.reason)
        .where(Report.post_id.in_(ids), Report.resolved_at.is_(None))
        .order_by(Report.created_at)
    ):
        if reason:
            reasons.setdefault(post_id, []).append(reason)
    return [OpenReport(pid, author, at, reasons.get(pid, []), int(n)) for pid, author, at, n in posts]
