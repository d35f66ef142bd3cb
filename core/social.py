"""Follows between people."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BindParameter, ColumnElement, ScalarSelect, Select, bindparam, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core import people
from core.db import insert_ignore_many, rowcount
from core.errors import UserError
from core.models import Follow, Identity, Person, Post, table
from core.posts import author_stats
from core.visibility import blocked_between

LIST_LIMIT = 50


async def follow(session: AsyncSession, follower: Person, followee: Person, *, blocked: bool | None = None) -> bool:
    """Returns False when already following. `blocked`: whether a block stands between them, when the
    caller read it with the followee (None: it is read here)."""
    if follower.id == followee.id:
        raise UserError("You can't follow yourself.")
    if blocked is None:
        blocked = await blocked_between(session, follower.id, followee.id)
    if blocked:
        # The same line whoever blocked whom: nobody learns that they were blocked.
        raise UserError(f"You can't follow @{followee.handle}.")
    pair = {"follower_id": follower.id, "followee_id": followee.id}
    return rowcount(await session.execute(insert_ignore_many(session, Follow), pair)) == 1


async def unfollow(session: AsyncSession, follower: Person, followee: Person) -> bool:
    """Returns False when not following."""
    pair = {"follower_id": follower.id, "followee_id": followee.id}
    return rowcount(await session.execute(_UNFOLLOW, pair)) == 1


_follows = table(Follow)
_UNFOLLOW = delete(_follows).where(
    _follows.c.follower_id == bindparam("follower_id"), _follows.c.followee_id == bindparam("followee_id")
)


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


def _follow_count_columns(person_id: int | ColumnElement[int]) -> tuple[ScalarSelect[int], ScalarSelect[int]]:
    followers_count = select(func.count()).where(Follow.followee_id == person_id).scalar_subquery()
    following_count = select(func.count()).where(Follow.follower_id == person_id).scalar_subquery()
    return followers_count, following_count


async def follow_counts(session: AsyncSession, person_id: int) -> tuple[int, int]:
    """(followers, following)."""
    row = (await session.execute(select(*_follow_count_columns(person_id)))).one()  # one round trip
    return int(row[0] or 0), int(row[1] or 0)


@dataclass(frozen=True, slots=True)
class ProfileCounts:
    posts: int
    likes: int  # received
    followers: int
    following: int
    platforms: tuple[str, ...]  # where the person has an account, sorted


async def profile_counts(session: AsyncSession, person_id: int, *, include_private: bool) -> ProfileCounts:
    """What a profile counts, and the platforms, in one round trip; posts and likes as
    `core.posts.author_stats` counts them."""
    row = (await session.execute(_PROFILE_COUNTS[include_private], {"person_id": person_id})).one()
    return _counts(row)


async def profile_by_handle(session: AsyncSession, raw: str, viewer: Person) -> tuple[Person, bool, ProfileCounts]:
    """`people.by_handle_for` and the counts of the profile as others see it, in one statement: /profile of
    someone else needs no other (its own latest posts aside)."""
    person, blocks_them, row = await people.find_for(session, raw, viewer, _BY_HANDLE_WITH_COUNTS)
    return person, blocks_them, _counts(row[3:])


def _counts(values: Sequence[Any]) -> ProfileCounts:
    """From the columns of `_count_columns`."""
    posts, likes, followers, following, platforms = values
    return ProfileCounts(int(posts or 0), int(likes or 0), int(followers or 0), int(following or 0), _names(platforms))


def _names(joined: str | None) -> tuple[str, ...]:
    return tuple(sorted(name for name in (joined or "").split(",") if name))


def _count_columns(person_id: ColumnElement[int], *, include_private: bool) -> tuple[ColumnElement[Any], ...]:
    """posts, likes received, followers, following, platforms (comma-joined: names have no comma)."""
    stats = author_stats(person_id, include_private=include_private)
    posts = stats.with_only_columns(func.count()).scalar_subquery()
    likes = stats.with_only_columns(func.coalesce(func.sum(Post.like_count), 0)).scalar_subquery()
    # A derived table is not correlated by itself: `correlate` keeps an outer person out of its FROM.
    theirs = select(Identity.platform).where(Identity.person_id == person_id).distinct().correlate(Person).subquery()
    platforms = select(func.aggregate_strings(theirs.c.platform, ",")).scalar_subquery()
    return (posts, likes, *_follow_count_columns(person_id), platforms)


def _profile_counts_query(include_private: bool) -> Select[Any]:
    person_id: BindParameter[int] = bindparam("person_id")
    return select(*_count_columns(person_id, include_private=include_private))


# Every /profile sends one of them: built once (with and without the private posts), with the person bound.
_PROFILE_COUNTS = {include_private: _profile_counts_query(include_private) for include_private in (False, True)}
_BY_HANDLE_WITH_COUNTS = people.by_handle_query(*_count_columns(table(Person).c.id, include_private=False))
