"""Posts and likes."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, Select, bindparam, case, delete, exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from core import cards
from core import visibility as rule
from core.db import insert_ignore_many, rowcount
from core.errors import UserError
from core.feed.ranking import hot_score
from core.gen.backend import GeneratedImage
from core.models import Like, Person, Post, table, utcnow


def parse_post_id(raw: str) -> int:
    value = raw.strip().removeprefix("#")
    # isascii: str.isdigit() also accepts digits such as '²' that int() rejects.
    if not (value.isascii() and value.isdigit()) or len(value) > 18:
        raise UserError(f"{raw.strip() or 'That'} is not a post number. Posts are written like #12.")
    return int(value)


async def visible_post(
    session: AsyncSession, post_id: int, viewer: Person | None, *, admin: bool = False, deleted: bool = False
) -> Post:
    """A post the viewer may see (see core.visibility): the one rule for every lookup by number."""
    return await rule.visible_post(session, post_id, viewer, admin=admin, deleted=deleted)


async def visible_view(
    session: AsyncSession, post_id: int, viewer: Person | None, *, admin: bool = False
) -> cards.PostView:
    """`visible_post` with its card data, for the commands that show the card (/like, /post): the post,
    the handles and whether a block stands between viewer and author are one statement, not three."""
    params = {"post_id": post_id, "viewer_id": viewer.id if viewer is not None else 0}
    row = (await session.execute(_POST_VIEW, params)).first()
    if row is None:
        raise rule.no_such_post(post_id)
    view = cards.view_of(row[:4])
    await rule.check_visible(session, view.post, viewer, admin=admin, blocked=bool(row[4]))
    return view


# Built once, with bound parameters: building it per call cost more than running it. Nobody has id 0, so
# without a viewer the block test finds nothing.
_POST_VIEW = cards.with_card_data(select(Post).where(Post.id == bindparam("post_id"))).add_columns(
    rule.block_between(bindparam("viewer_id"), Post.author_id)
)


LINEAGE_MAX = 100  # ancestors remembered per post; a longer chain is cut at its oldest end


def lineage_of(parent: Post | None) -> str | None:
    """The new post's ancestors, nearest first: its parent, then the parent's own ancestors."""
    if parent is None:
        return None
    return ",".join([str(parent.id), *(parent.lineage or "").split(",")][:LINEAGE_MAX]).rstrip(",")


def ancestors(post: Post) -> list[int]:
    return [int(part) for part in (post.lineage or "").split(",") if part]


async def create_post(session: AsyncSession, post: Post) -> Post:
    """Writes a post built by new_post; a remix counts on its parent."""
    session.add(post)
    if post.parent_id is not None:
        await session.execute(update(Post).where(Post.id == post.parent_id).values(remix_count=Post.remix_count + 1))
    await session.flush()
    return post


def new_post(
    author: Person,
    prompt: str,
    image: GeneratedImage,
    image_path: str,
    *,
    parent: Post | None = None,
    visibility: str = "public",
    origin: str | None = None,
    post_id: int | None = None,
) -> Post:
    """The post's row, not yet added to a session: create_post writes one; the generation queue writes a
    batch of them in one flush (one INSERT for many rows). `post_id`: an id reserved beforehand (core.gen.queue
    signs the image with it before the insert)."""
    created = utcnow()
    return Post(
        id=post_id,
        author_id=author.id,
        prompt=prompt,
        revised_prompt=image.revised_prompt,
        image_path=image_path,
        width=image.width,
        height=image.height,
        seed=image.seed,
        backend=image.backend,
        model=image.model,
        parent_id=parent.id if parent else None,
        lineage=lineage_of(parent),
        origin=origin,
        visibility=visibility,
        author_private=author.private,
        # A generation that was running when its author was banned is held back with the rest.
        status=rule.BANNED if author.banned_until is not None and author.banned_until > created else rule.VISIBLE,
        like_count=0,
        remix_count=0,
        # Every column with a server default given here: the INSERT then reads nothing back, and the queue's
        # batch of posts is one executemany instead of an INSERT ... RETURNING per post.
        comment_count=0,
        gallery_round=0,
        hot=hot_score(0, created),
        created_at=created,
    )


async def delete_post(session: AsyncSession, post: Post, *, adjust_parent: bool = True) -> bool:
    """Deletes the post for good; returns whether its image file is now unused and may be removed.
    `adjust_parent` False: the soft deletion (core.safety) already lowered the parent's remix count."""
    path = post.image_path
    if adjust_parent and post.parent_id is not None:
        await session.execute(
            update(Post).where(Post.id == post.parent_id, Post.remix_count > 0).values(remix_count=Post.remix_count - 1)
        )
    await session.delete(post)
    await session.flush()
    still_used = await session.scalar(select(Post.id).where(Post.image_path == path).limit(1))
    return still_used is None


async def toggle_like(session: AsyncSession, person: Person, post: Post) -> bool:
    """Likes or unlikes; returns True when the post is now liked. Counts move atomically."""
    who = {"post_id": post.id, "person_id": person.id}
    if rowcount(await session.execute(insert_ignore_many(session, Like), who)) == 1:
        delta, liked = 1, True
    elif rowcount(await session.execute(_UNLIKE, who)) == 1:
        delta, liked = -1, False
    else:
        return await _like_as_it_stands(session, person, post)
    # The new count is most likely the one just read plus ours: its hot score goes in the same statement,
    # written only if the count is indeed that. If another press moved the count meanwhile, the score for
    # the count as it now stands is written in a second statement (unless yet another press did it since).
    expected = max(post.like_count + delta, 0)  # the count read may be stale: an unlike of a like made since
    hot = hot_score(expected, post.created_at)
    count = int(
        await session.scalar(_ADD_LIKE, {"post_id": post.id, "delta": delta, "count": expected, "score": hot}) or 0
    )
    if count != expected:
        hot = hot_score(count, post.created_at)
        await session.execute(_SET_HOT, {"post_id": post.id, "count": count, "score": hot})
    # The object shows what we wrote without the ORM writing it again later.
    set_committed_value(post, "like_count", count)
    set_committed_value(post, "hot", hot)
    return liked


# A like is the most frequent write: its statements are built once, on the tables (no ORM bookkeeping of
# objects to synchronise, as there are none to: the post's object is set by hand above).
_likes, _posts = table(Like), table(Post)
_UNLIKE = delete(_likes).where(_likes.c.post_id == bindparam("post_id"), _likes.c.person_id == bindparam("person_id"))
_ADD_LIKE = (
    update(_posts)
    .where(_posts.c.id == bindparam("post_id"))
    .values(
        like_count=_posts.c.like_count + bindparam("delta"),
        # SET sees the row as it was: this is the new count compared with the one expected.
        hot=case(
            (_posts.c.like_count + bindparam("delta") == bindparam("count"), bindparam("score")), else_=_posts.c.hot
        ),
    )
    .returning(_posts.c.like_count)
)
_SET_HOT = (
    update(_posts)
    .where(_posts.c.id == bindparam("post_id"), _posts.c.like_count == bindparam("count"))
    .values(hot=bindparam("score"))
)


async def _like_as_it_stands(session: AsyncSession, person: Person, post: Post) -> bool:
    """Another press of theirs took the like back first, and yet another may have put it back
    since: this press changed nothing, so it tells the state as it is now, read in one statement
    (one snapshot) so that the like and the count agree."""
    mine = exists().where(Like.post_id == post.id, Like.person_id == person.id)
    row = (await session.execute(select(Post.like_count, Post.hot, mine).where(Post.id == post.id))).first()
    if row is None:  # deleted meanwhile
        raise UserError(f"There is no post #{post.id}.")
    count, hot, liked = row
    set_committed_value(post, "like_count", count)
    set_committed_value(post, "hot", hot)
    return bool(liked)


def author_stats(person_id: int | ColumnElement[int], *, include_private: bool = False) -> Select[int, int]:
    """(posts, likes received) over the posts others see, or all not deleted ones for their own profile."""
    query = select(func.count().label("posts"), func.coalesce(func.sum(Post.like_count), 0).label("likes"))
    query = query.where(Post.author_id == person_id)
    return query.where(_theirs(include_private))


def _theirs(include_private: bool) -> ColumnElement[bool]:
    return Post.status != rule.DELETED if include_private else rule.shown()


LATEST = 5  # posts a profile lists


@dataclass(frozen=True, slots=True)
class Preview:
    """What a profile lists of a post (core.cards.preview_line); no need to load the whole post for it."""

    id: int
    prompt: str
    like_count: int


async def latest_posts(session: AsyncSession, person_id: int, *, include_private: bool) -> list[Preview]:
    rows = await session.execute(_LATEST[include_private], {"person_id": person_id})
    return [Preview(*row) for row in rows]


# Every /profile sends it: built once (with and without the private posts), with the person bound.
_LATEST = {
    include_private: select(Post.id, Post.prompt, Post.like_count)
    .where(Post.author_id == bindparam("person_id"), _theirs(include_private))
    .order_by(Post.id.desc())
    .limit(LATEST)
    for include_private in (False, True)
}
