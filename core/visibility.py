"""Who may see which post: the one rule every public listing and every post lookup goes through.

A post is shown to others only while its moderation `status` is `visible` and it is public. On top
of that, a private profile's posts reach only its followers (not /top, galleries, trending), and
two people who blocked one another (either way) do not see each other's posts. The author always
sees their own posts, marked when they are not visible to others; admins see everything.

The filters are plain column tests on `posts` (`status = 'visible'`, `author_private = false`),
so the hot listings (feed, /top) keep their index walks; only the block filter reads another
table, a small per-viewer set.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, Exists, SQLColumnExpression, String, and_, exists, literal_column, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import UserError
from core.models import Block, Follow, Person, Post

VISIBLE = "visible"
REVIEW = "review"  # reported by enough people: out of public places until an admin decides
HIDDEN = "hidden"  # taken out by an admin with /hide
BANNED = "banned"  # its author is banned; back when the ban ends
DELETED = "deleted"  # soft-deleted: kept DELETED_RETENTION_DAYS for /restore, then purged

STATUS_NOTE = {
    REVIEW: "⚠️ Under review: hidden from others until an admin decides",
    HIDDEN: "🚫 Hidden by an admin: only you can see it",
    BANNED: "🚫 Hidden while your account is banned",
    DELETED: "🗑 Deleted",
}


# Written into the SQL rather than bound: PostgreSQL plans a prepared statement once for all values of
# its parameters after a few runs (a generic plan) and otherwise plans it again on every run; with these
# known, and /top's LIMIT, the generic plan is /top's index walk. With them bound it was a parallel scan
# estimated at a thousand rows, so every /top was planned afresh (about 0.5 ms, more than its execution).
_VISIBLE = literal_column(f"'{VISIBLE}'", String)
_PUBLIC = literal_column("'public'", String)


def shown() -> ColumnElement[bool]:
    """Posts others may see at all: to followers (feed, followed part of digests) and by number."""
    return and_(Post.status == _VISIBLE, Post.visibility == _PUBLIC)


def listed() -> ColumnElement[bool]:
    """Posts for public places open to everyone: /top, galleries, trending, others' profiles."""
    return and_(Post.status == _VISIBLE, Post.visibility == _PUBLIC, Post.author_private.is_(False))


def not_blocked(viewer_id: int | SQLColumnExpression[int]) -> ColumnElement[bool]:
    """Leaves out authors the viewer blocked and authors who blocked the viewer."""
    blocked = select(Block.blocked_id).where(Block.blocker_id == viewer_id)
    blockers = select(Block.blocker_id).where(Block.blocked_id == viewer_id)
    return and_(Post.author_id.not_in(blocked), Post.author_id.not_in(blockers))


def block_between(one: int | SQLColumnExpression[int], other: int | SQLColumnExpression[int]) -> Exists:
    """Whether either of the two blocked the other, as an SQL test (either side may be a column)."""
    return exists().where(
        or_(
            and_(Block.blocker_id == one, Block.blocked_id == other),
            and_(Block.blocker_id == other, Block.blocked_id == one),
        )
    )


def seen_by(viewer_id: int) -> ColumnElement[bool]:
    """`may_see` as a column test, for listings of posts reached by their number (lineage): the viewer's
    own (not deleted), or shown, not across a block, and from a public profile or one they follow."""
    followed = select(Follow.followee_id).where(Follow.follower_id == viewer_id)
    others = and_(
        shown(),
        not_blocked(viewer_id),
        or_(Post.author_private.is_(False), Post.author_id.in_(followed)),
    )
    return or_(and_(Post.author_id == viewer_id, Post.status != DELETED), others)


async def blocked_between(session: AsyncSession, one: int, other: int) -> bool:
    """Whether either of the two blocked the other."""
    return bool(await session.scalar(select(block_between(one, other))))


async def blocked_sets(session: AsyncSession, person_ids: list[int]) -> dict[int, set[int]]:
    """For each person, everyone on the other side of a block with them (either direction)."""
    result: dict[int, set[int]] = {}
    if not person_ids:
        return result
    rows = await session.execute(
        select(Block.blocker_id, Block.blocked_id).where(
            or_(Block.blocker_id.in_(person_ids), Block.blocked_id.in_(person_ids))
        )
    )
    wanted = set(person_ids)
    for blocker, blocked in rows:
        if blocker in wanted:
            result.setdefault(blocker, set()).add(blocked)
        if blocked in wanted:
            result.setdefault(blocked, set()).add(blocker)
    return result


async def follows(session: AsyncSession, follower_id: int, followee_id: int) -> bool:
    found = await session.scalar(
        select(Follow.follower_id).where(Follow.follower_id == follower_id, Follow.followee_id == followee_id)
    )
    return found is not None


async def sees_profile_posts(
    session: AsyncSession, author: Person, viewer: Person | None, *, admin: bool, blocked: bool | None = None
) -> bool:
    """A private profile's posts are for its followers; blocks hide them both ways. `blocked`: whether a
    block stands between them, when the caller read it with the author (None: it is read here)."""
    if admin or (viewer is not None and viewer.id == author.id):
        return True
    if viewer is None:
        return not author.private
    if blocked is None:
        blocked = await blocked_between(session, viewer.id, author.id)
    if blocked:
        return False
    return not author.private or await follows(session, viewer.id, author.id)


async def may_see(
    session: AsyncSession, post: Post, viewer: Person | None, *, admin: bool = False, blocked: bool | None = None
) -> bool:
    """Whether the viewer may see this (not deleted) post. `blocked`: whether a block stands between
    the viewer and the author, when the caller read it with the post (None: it is read here)."""
    if admin or (viewer is not None and viewer.id == post.author_id):
        return True
    if post.status != VISIBLE or not post.is_public:
        return False
    if viewer is None:
        return not post.author_private
    if blocked is None:
        blocked = await blocked_between(session, viewer.id, post.author_id)
    if blocked:
        return False
    return not post.author_private or await follows(session, viewer.id, post.author_id)


async def visible_post(
    session: AsyncSession, post_id: int, viewer: Person | None, *, admin: bool = False, deleted: bool = False
) -> Post:
    """The post, if the viewer may see it; `deleted` lets an admin reach a deleted one (to restore it).
    Anyone else gets the same line as for a post that does not exist, so a block or a hidden post is
    never revealed."""
    post = await session.get(Post, post_id)
    if post is None:
        raise no_such_post(post_id)
    await check_visible(session, post, viewer, admin=admin, deleted=deleted)
    return post


def no_such_post(post_id: int) -> UserError:
    return UserError(f"There is no post #{post_id}.")


async def check_visible(
    session: AsyncSession,
    post: Post,
    viewer: Person | None,
    *,
    admin: bool = False,
    deleted: bool = False,
    blocked: bool | None = None,
) -> None:
    """Refuses the post to a viewer who may not see it (`blocked` as for `may_see`)."""
    if post.status == DELETED and not (deleted and admin):
        raise UserError(f"Post #{post.id} was deleted.")
    if not await may_see(session, post, viewer, admin=admin, blocked=blocked):
        raise no_such_post(post.id)
