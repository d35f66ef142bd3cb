"""Moderation of posts: soft deletion, hiding, restoring and the purge after the retention period."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core import audit
from core.gen.media import MediaStore
from core.models import Notification, Person, Post, Report, utcnow
from core.posts import delete_post
from core.visibility import BANNED, DELETED, HIDDEN, VISIBLE

PURGE_CHUNK = 200


async def soft_delete(session: AsyncSession, post: Post) -> None:
    """Gone everywhere at once, kept (row and file) until the purge, so an admin can /restore it."""
    if post.status == DELETED:
        return
    post.status = DELETED
    post.deleted_at = utcnow()
    # News about it not yet told is no longer news (the hard delete used to cascade them away).
    await session.execute(
        delete(Notification).where(Notification.post_id == post.id, Notification.batched_at.is_(None))
    )
    if post.parent_id is not None:
        await session.execute(
            update(Post).where(Post.id == post.parent_id, Post.remix_count > 0).values(remix_count=Post.remix_count - 1)
        )


def hide(post: Post) -> None:
    post.status = HIDDEN


async def restore(session: AsyncSession, post: Post) -> None:
    """Back where it was: visible, or held back again while its author is banned."""
    if post.status == DELETED and post.parent_id is not None:
        await session.execute(update(Post).where(Post.id == post.parent_id).values(remix_count=Post.remix_count + 1))
    author = await session.get(Person, post.author_id)
    post.status = BANNED if author is not None and is_banned(author) else VISIBLE
    post.deleted_at = None


async def resolve_reports(session: AsyncSession, post_id: int) -> None:
    await session.execute(
        update(Report).where(Report.post_id == post_id, Report.resolved_at.is_(None)).values(resolved_at=utcnow())
    )


def is_banned(person: Person, now: datetime | None = None) -> bool:
    return person.banned_until is not None and person.banned_until > (now or utcnow())


async def purge(
    sessions: async_sessionmaker[AsyncSession], media: MediaStore, now: datetime, retention_days: int
) -> int:
    """Removes posts deleted more than `retention_days` ago, and their files once no post uses them.
    The audit trail keeps its entries (they name the post by number, without a foreign key)."""
    cutoff = now - timedelta(days=retention_days)
    purged = 0
    while True:
        async with sessions() as session:
            due = list(
                await session.scalars(
                    select(Post)
                    .where(Post.status == DELETED, Post.deleted_at < cutoff)
                    .order_by(Post.id)
                    .limit(PURGE_CHUNK)
                )
            )
            if not due:
                return purged
            unused = [post.image_path for post in due if await delete_post(session, post, adjust_parent=False)]
            for post in due:
                await audit.record(session, actor_id=None, action="purge", person_id=post.author_id, post_id=post.id)
            await session.commit()
        for path in unused:
            await media.delete(path)
        purged += len(due)
