"""Comments under posts: writing, keyset pages (newest first), and who may delete one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import UserError
from core.models import Comment, Person, Post, utcnow
from core.replies import Button, Reply

COMMENT_MAX_CHARS = 500
PAGE_SIZE = 5
LATEST_ON_POST = 3
RATE_WINDOW = timedelta(minutes=1)  # COMMENTS_PER_MINUTE counts comments in this window


@dataclass(frozen=True, slots=True)
class Shown:
    id: int
    author: str
    text: str


def check_text(text: str) -> str:
    text = " ".join(text.split())
    if not text:
        raise UserError("Write something to comment, for example: /comment #12 lovely colours!")
    if len(text) > COMMENT_MAX_CHARS:
        raise UserError(f"That comment is {len(text)} characters; the limit is {COMMENT_MAX_CHARS}. Please shorten it.")
    return text


async def check_rate(session: AsyncSession, person_id: int, per_minute: int) -> None:
    """A burst is fine, a flood is not: at most `per_minute` comments in the last minute (0: no limit)."""
    if per_minute == 0:
        return
    recent = await session.scalar(
        select(func.count())
        .select_from(Comment)
        .where(Comment.author_id == person_id, Comment.created_at > utcnow() - RATE_WINDOW)
    )
    if int(recent or 0) >= per_minute:
        raise UserError("You are commenting very fast; please wait a minute.")


async def add(session: AsyncSession, post: Post, author: Person, text: str) -> Comment:
    comment = Comment(post_id=post.id, author_id=author.id, text=text, created_at=utcnow())
    session.add(comment)
    await session.execute(update(Post).where(Post.id == post.id).values(comment_count=Post.comment_count + 1))
    await session.flush()
    return comment


async def page(session: AsyncSession, post_id: int, *, before: int | None, limit: int) -> list[Shown]:
    """Up to `limit` comments older than comment `before` (all when None), newest first."""
    query = (
        select(Comment.id, Person.handle, Comment.text)
        .join(Person, Person.id == Comment.author_id)
        .where(Comment.post_id == post_id)
    )
    if before is not None:
        query = query.where(Comment.id < before)
    rows = await session.execute(query.order_by(Comment.id.desc()).limit(limit))
    return [Shown(comment_id, handle, text) for comment_id, handle, text in rows]


async def delete(session: AsyncSession, comment_id: int, person: Person, *, admin: bool) -> Comment:
    """Its author, the post's author and admins may delete a comment."""
    found = await session.get(Comment, comment_id)
    post = await session.get(Post, found.post_id) if found else None
    if found is None or post is None:
        raise UserError(f"There is no comment c{comment_id}.")
    if person.id not in (found.author_id, post.author_id) and not admin:
        raise UserError(f"Comment c{comment_id} is not yours to delete.")
    await session.delete(found)
    await session.execute(
        update(Post).where(Post.id == post.id, Post.comment_count > 0).values(comment_count=Post.comment_count - 1)
    )
    await session.flush()
    return found


def parse_comment_id(raw: str) -> int:
    value = raw.strip().lower().removeprefix("c")
    if not (value.isascii() and value.isdigit()) or len(value) > 18:
        raise UserError(f"{raw.strip() or 'That'} is not a comment number. Comments are written like c42.")
    return int(value)


def lines(shown: list[Shown]) -> list[str]:
    return [f"c{c.id} @{c.author}: {c.text}" for c in shown]


def listing(post_id: int, shown: list[Shown], *, more: bool, title: str) -> Reply:
    """Comments as one message, with a button for the older ones when there are more."""
    buttons = ((Button("💬 Older comments", f"comments {post_id} {shown[-1].id}"),),) if more and shown else ()
    return Reply(text="\n".join([title, *lines(shown)]), buttons=buttons)
