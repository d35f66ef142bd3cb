"""Follows between people."""

from __future__ import annotations

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.db import insert_ignore, rowcount
from core.errors import UserError
from core.models import Follow, Person
from core.visibility import blocked_between

LIST_LIMIT = 50


async def follow(session: AsyncSession, follower: Person, followee: Person) -> bool:
    """Returns False when already following."""
    if follower.id == followee.id:
        raise UserError("You can't follow yourself.")
    if await blocked_between(session, follower.id, followee.id):
        # The same line whoever blocked whom: nobody learns that they were blocked.
        raise UserError(f"You can't follow @{followee.handle}.")
    result = await session.execute(insert_ignore(session, Follow, follower_id=follower.id, followee_id=followee.id))
    return rowcount(result) == 1


async def unfollow(session: AsyncSession, follower: Person, followee: Person) -> bool:
    """Returns False when not following."""
    result = await session.execute(
        delete(Follow).where(Follow.follower_id == follower.id, Follow.followee_id == followee.id)
    )
    return rowcount(result) == 1


async def is_following(session: AsyncSession, follower_id: int, followee_id: int) -> bool:
    found = await session.scalar(
        select(Follow.follower_id).where(Follow.follower_id == follower_id, Follow.followee_id == followee_id)
    )
    return found is not None


async def following(session: AsyncSession, person: Person, limit: int = LIST_LIMIT) -> list[str]:
    rows = await session.scalars(
        select(Person.handle)
        .join(Follow, Follow.followee_id == Person.id)
        .where(Follow.follower_id == person.id)
        .order_by(Person.handle)
        .limit(limit)
    )
    return list(rows)


async def followers(session: AsyncSession, person: Person, limit: int = LIST_LIMIT) -> list[str]:
    rows = await session.scalars(
        select(Person.handle)
        .join(Follow, Follow.follower_id == Person.id)
        .where(Follow.followee_id == person.id)
        .order_by(Person.handle)
        .limit(limit)
    )
    return list(rows)


async def follow_counts(session: AsyncSession, person_id: int) -> tuple[int, int]:
    """(followers, following)."""
    followers_count = select(func.count()).where(Follow.followee_id == person_id).scalar_subquery()
    following_count = select(func.count()).where(Follow.follower_id == person_id).scalar_subquery()
    row = (await session.execute(select(followers_count, following_count))).one()  # one round trip
    return int(row[0] or 0), int(row[1] or 0)
