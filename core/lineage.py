"""A post's lineage: the chain of ancestors back to the original, and its most liked remixes."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.models import Person, Post
from core.posts import ancestors
from core.replies import Button, Reply
from core.visibility import DELETED, shown

TOP_REMIXES = 5


@dataclass(frozen=True, slots=True)
class Link:
    post_id: int
    author: str | None  # None: deleted, or not the viewer's to see
    prompt: str = ""
    like_count: int = 0


async def _links(session: AsyncSession, ids: list[int], viewer: Person) -> dict[int, Link]:
    if not ids:
        return {}
    rows = await session.execute(
        select(Post.id, Person.handle, Post.prompt, Post.like_count)
        .join(Person, Person.id == Post.author_id)
        .where(Post.id.in_(ids), _seen_by(viewer))
    )
    return {post_id: Link(post_id, handle, prompt, likes) for post_id, handle, prompt, likes in rows}


def _seen_by(viewer: Person) -> ColumnElement[bool]:
    """Shown to others (core.visibility), or the viewer's own and not deleted (soft deletion keeps the row)."""
    return or_(shown(), and_(Post.author_id == viewer.id, Post.status != DELETED))


async def chain(session: AsyncSession, post: Post, viewer: Person) -> list[Link]:
    """Ancestors, nearest first; a deleted (or hidden) one is a gap with no author."""
    ids = ancestors(post)
    found = await _links(session, ids, viewer)
    return [found.get(i, Link(i, None)) for i in ids]


async def top_remixes(session: AsyncSession, post: Post, viewer: Person) -> list[Link]:
    rows = await session.execute(
        select(Post.id, Person.handle, Post.prompt, Post.like_count)
        .join(Person, Person.id == Post.author_id)
        .where(Post.parent_id == post.id, _seen_by(viewer))
        .order_by(Post.like_count.desc(), Post.id.desc())
        .limit(TOP_REMIXES)
    )
    return [Link(*row) for row in rows]


def _line(link: Link) -> str:
    if link.author is None:
        return "… a deleted post"
    prompt = link.prompt if len(link.prompt) <= 50 else link.prompt[:49] + "…"
    return f"#{link.post_id} by @{link.author}: {prompt} (❤️ {link.like_count})"


def reply(post: Post, author: str, up: list[Link], down: list[Link]) -> Reply:
    lines = [f"🌳 Lineage of #{post.id} by @{author}"]
    if up:
        lines += ["Remix of:", *(f"  ↑ {_line(link)}" for link in up)]
    else:
        lines.append("An original: it remixes nothing.")
    if down:
        lines += ["Most liked remixes:", *(f"  ↓ {_line(link)}" for link in down)]
    else:
        lines.append(f"No remixes yet. Make one: /remix {post.id} <prompt>")
    shown = [link for link in up + down if link.author is not None]
    buttons = tuple(
        tuple(Button(f"#{link.post_id}", f"post {link.post_id}") for link in shown[i : i + 4])
        for i in range(0, len(shown), 4)
    )
    return Reply(text="\n".join(lines), buttons=buttons)
