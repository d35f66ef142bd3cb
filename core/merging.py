"""Merging two people into one: every row of the absorbed person moves to the survivor.

Runs inside the caller's transaction and never commits, so a crash at any point leaves both
people as they were (the transaction rolls back) or the merged one, never half of each. Rows
that would collide after the move (both liked one post, both followed one person) are deleted
first, so no unique constraint can break, and the like counts are recounted from the rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from core.db import locked_in_id_order, on_postgres, rowcount
from core.feed.ranking import hot_score
from core.models import (
    AuditEntry,
    Block,
    Comment,
    Delivery,
    Follow,
    FollowRequest,
    GenerationJob,
    Identity,
    Like,
    ModerationRefusal,
    Notification,
    Person,
    Post,
    Report,
)
from core.visibility import BANNED, VISIBLE

# Every column that refers to a person, and so every one a merge must move. A test holds this list
# against the models' foreign keys, so a new table cannot be forgotten here.
PERSON_COLUMNS = (
    Identity.person_id,
    Follow.follower_id,
    Follow.followee_id,
    Post.author_id,
    Like.person_id,
    GenerationJob.person_id,
    Delivery.person_id,
    ModerationRefusal.person_id,
    Notification.recipient_id,
    Notification.actor_id,
    AuditEntry.actor_id,
    AuditEntry.target_person_id,
    Report.reporter_id,
    Block.blocker_id,
    Block.blocked_id,
    FollowRequest.follower_id,
    FollowRequest.followee_id,
    Comment.author_id,
)
# Column kinds of notifications that are news once per (recipient, actor, post); remixes are each new.
ONCE_PER_ACTOR = ("follow", "like")


@dataclass(frozen=True, slots=True)
class MergeStats:
    posts: int
    likes_dropped: int  # the same post liked from both accounts: one like is kept
    follows_dropped: int  # duplicates, and follows between the two accounts


def older_first(first: Person, second: Person) -> tuple[Person, Person]:
    """(survivor, absorbed): the older account keeps its handle."""
    return (first, second) if (first.created_at, first.id) <= (second.created_at, second.id) else (second, first)


async def merge_people(session: AsyncSession, survivor: Person, absorbed: Person) -> MergeStats:
    assert survivor.id != absorbed.id
    keep, gone = survivor.id, absorbed.id
    likes_dropped = await _merge_likes(session, keep, gone)
    follows_dropped = await _merge_follows(session, keep, gone)
    await _merge_notifications(session, keep, gone)
    await _merge_digest_keys(session, keep, gone)
    moved_posts = await session.execute(update(Post).where(Post.author_id == gone).values(author_id=keep))
    for column in (
        Identity.person_id,
        GenerationJob.person_id,
        Delivery.person_id,
        ModerationRefusal.person_id,
        AuditEntry.actor_id,
        AuditEntry.target_person_id,
        Comment.author_id,
    ):
        await session.execute(update(column.class_).where(_rows_of(session, column, gone)).values({column.key: keep}))
    await _merge_reports(session, keep, gone)
    await _merge_pairs(session, Block.blocker_id, Block.blocked_id, keep, gone)
    await _merge_pairs(session, FollowRequest.follower_id, FollowRequest.followee_id, keep, gone)
    _merge_preferences(survivor, absorbed)
    _merge_safety(survivor, absorbed)
    await session.execute(update(Post).where(Post.author_id == keep).values(author_private=survivor.private))
    if survivor.banned_until is not None:
        await session.execute(update(Post).where(Post.author_id == keep, Post.status == VISIBLE).values(status=BANNED))
    await session.execute(delete(Person).where(Person.id == gone))
    await session.flush()
    return MergeStats(rowcount(moved_posts), likes_dropped, follows_dropped)


def _rows_of(session: AsyncSession, column: InstrumentedAttribute[int | None], gone: int) -> ColumnElement[bool]:
    """The rows of `gone`'s in `column`. The person's running jobs are updated meanwhile by the generation
    queue (its lease renewer, a batch's completion), which locks them in ascending id on PostgreSQL: so does
    the move, or the two could deadlock (core.db.locked_in_id_order)."""
    if column is GenerationJob.person_id:
        return locked_in_id_order(on_postgres(session), GenerationJob.id, column == gone)
    return column == gone


async def _merge_likes(session: AsyncSession, keep: int, gone: int) -> int:
    both = select(Like.post_id).where(Like.person_id == keep)
    twice = list(await session.scalars(select(Like.post_id).where(Like.person_id == gone, Like.post_id.in_(both))))
    if twice:
        await session.execute(delete(Like).where(Like.person_id == gone, Like.post_id.in_(twice)))
    await session.execute(update(Like).where(Like.person_id == gone).values(person_id=keep))
    await _recount_likes(session, twice)
    return len(twice)


async def _recount_likes(session: AsyncSession, post_ids: list[int]) -> None:
    """The counter follows the rows again, and the hot score follows the counter."""
    for post_id, created_at in (
        await session.execute(select(Post.id, Post.created_at).where(Post.id.in_(post_ids)))
    ).all():
        count = int(await session.scalar(select(func.count()).where(Like.post_id == post_id)) or 0)
        values = {"like_count": count, "hot": hot_score(count, created_at)}
        await session.execute(update(Post).where(Post.id == post_id).values(values))


async def _merge_follows(session: AsyncSession, keep: int, gone: int) -> int:
    between = or_(
        and_(Follow.follower_id == keep, Follow.followee_id == gone),
        and_(Follow.follower_id == gone, Follow.followee_id == keep),
    )
    dropped = rowcount(await session.execute(delete(Follow).where(between)))
    kept_followees = select(Follow.followee_id).where(Follow.follower_id == keep)
    dropped += rowcount(
        await session.execute(delete(Follow).where(Follow.follower_id == gone, Follow.followee_id.in_(kept_followees)))
    )
    await session.execute(update(Follow).where(Follow.follower_id == gone).values(follower_id=keep))
    kept_followers = select(Follow.follower_id).where(Follow.followee_id == keep)
    dropped += rowcount(
        await session.execute(delete(Follow).where(Follow.followee_id == gone, Follow.follower_id.in_(kept_followers)))
    )
    await session.execute(update(Follow).where(Follow.followee_id == gone).values(followee_id=keep))
    return dropped


async def _merge_notifications(session: AsyncSession, keep: int, gone: int) -> None:
    await session.execute(update(Notification).where(Notification.recipient_id == gone).values(recipient_id=keep))
    await session.execute(update(Notification).where(Notification.actor_id == gone).values(actor_id=keep))
    # What one account did to the other is nobody's news now.
    await session.execute(delete(Notification).where(Notification.recipient_id == keep, Notification.actor_id == keep))
    # The likes and follows dropped above were told twice; the pending ones are told once.
    pending = and_(
        or_(Notification.recipient_id == keep, Notification.actor_id == keep),
        Notification.kind.in_(ONCE_PER_ACTOR),
        Notification.batched_at.is_(None),
    )
    first = (
        select(func.min(Notification.id))
        .where(pending)
        .group_by(Notification.recipient_id, Notification.actor_id, Notification.kind, Notification.post_id)
    )
    await session.execute(delete(Notification).where(pending, Notification.id.not_in(first)))


async def _merge_digest_keys(session: AsyncSession, keep: int, gone: int) -> None:
    """A digest already sent to either account today counts as the merged person's (one a day)."""
    rows = await session.execute(
        select(Delivery.id, Delivery.key).where(Delivery.person_id == gone, Delivery.key.like(f"digest:{gone}:%"))
    )
    for delivery_id, key in rows.all():
        renamed = f"digest:{keep}:{key.removeprefix(f'digest:{gone}:')}"
        if await session.scalar(select(Delivery.id).where(Delivery.key == renamed)) is None:
            await session.execute(update(Delivery).where(Delivery.id == delivery_id).values(key=renamed))


async def _merge_reports(session: AsyncSession, keep: int, gone: int) -> None:
    """One report per person per post, also after a merge."""
    both = select(Report.post_id).where(Report.reporter_id == keep)
    await session.execute(delete(Report).where(Report.reporter_id == gone, Report.post_id.in_(both)))
    await session.execute(update(Report).where(Report.reporter_id == gone).values(reporter_id=keep))


async def _merge_pairs(
    session: AsyncSession, first: InstrumentedAttribute[int], second: InstrumentedAttribute[int], keep: int, gone: int
) -> None:
    """A (first, second) pair table (blocks, follow requests): pairs between the two accounts go,
    duplicates go, the rest move to the survivor."""
    model = first.class_
    between = or_(and_(first == keep, second == gone), and_(first == gone, second == keep))
    await session.execute(delete(model).where(between))
    for mine, other in ((first, second), (second, first)):
        kept = select(other).where(mine == keep)
        await session.execute(delete(model).where(mine == gone, other.in_(kept)))
        await session.execute(update(model).where(mine == gone).values({mine.key: keep}))


def _merge_safety(survivor: Person, absorbed: Person) -> None:
    """A link must not lift a ban nor open a private profile: the stricter of the two holds."""
    survivor.promoted_admin = survivor.promoted_admin or absorbed.promoted_admin
    survivor.private = survivor.private or absorbed.private
    if absorbed.banned_until is not None and (
        survivor.banned_until is None or absorbed.banned_until > survivor.banned_until
    ):
        survivor.banned_until, survivor.ban_reason = absorbed.banned_until, absorbed.ban_reason


def _merge_preferences(survivor: Person, absorbed: Person) -> None:
    """The survivor's settings stay; only what it never set comes from the other account."""
    survivor.bio = survivor.bio or absorbed.bio
    survivor.timezone = survivor.timezone or absorbed.timezone
    survivor.digest_time = survivor.digest_time or absorbed.digest_time
    # The later of the two, so neither the cooldown nor the notification interval is skipped by a merge.
    survivor.last_generation_at = _later(survivor.last_generation_at, absorbed.last_generation_at)
    survivor.last_notified_at = _later(survivor.last_notified_at, absorbed.last_notified_at)


def _later(first: datetime | None, second: datetime | None) -> datetime | None:
    values = [v for v in (first, second) if v is not None]
    return max(values) if values else None
