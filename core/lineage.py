"""A post's lineage: the chain of ancestors back to the original, and the most liked remixes in the
whole tree below it (remixes of remixes too), each only where the viewer may see it."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.models import Person, Post
from core.posts import ancestors
from core.replies import Button, Reply
from core.visibility import seen_by

TOP_REMIXES = 5
# Generations below the post that are searched: each is one index walk on posts.parent_id, and the
# remixes of a remix of a remix of ... are rarely what someone browsing a lineage is after.
MAX_DEPTH = 6


@dataclass(frozen=True, slots=True)
class Link:
    post_id: int
    author: str | None  # None: deleted, or not the viewer's to see
    prompt: str = ""
    like_count: int = 0
    parent_id: int | None = None  # set for a remix further down than a direct one: what it remixes


async def _links(session: AsyncSession, ids: list[int], viewer: Person) -> dict[int, Link]:
    if not ids:
        return {}
    rows = await session.execute(
        select(Post.id, Person.handle, Post.prompt, Post.like_count)
        .join(Person, Person.id == Post.author_id)
        .where(Post.id.in_(ids), seen_by(viewer.id))
    )
    return {post_id: Link(post_id, handle, prompt, likes) for post_id, handle, prompt, likes in rows}


async def chain(session: AsyncSession, post: Post, viewer: Person) -> list[Link]:
    """Ancestors, nearest first; a deleted (or hidden) one is a gap with no author."""
    ids = ancestors(post)
    found = await _links(session, ids, viewer)
    return [found.get(i, Link(i, None)) for i in ids]


async def top_remixes(session: AsyncSession, post: Post, viewer: Person) -> list[Link]:
    """The most liked posts of the tree below `post`, down to MAX_DEPTH generations (a recursive CTE,
    which SQLite and PostgreSQL both run). A remix the viewer may not see is left out, but the tree
    is walked through it: its own remixes may be theirs to see."""
    tree = (
        select(Post.id.label("id"), literal(1).label("depth"))
        .where(Post.parent_id == post.id)
        .cte("subtree", recursive=True)
    )
    below = select(Post.id, tree.c.depth + 1).join(tree, Post.parent_id == tree.c.id).where(tree.c.depth < MAX_DEPTH)
    tree = tree.union_all(below)
    rows = await session.execute(
        select(Post.id, Person.handle, Post.prompt, Post.like_count, Post.parent_id, tree.c.depth)
        .join(tree, tree.c.id == Post.id)
        .join(Person, Person.id == Post.author_id)
        .where(seen_by(viewer.id))
        .order_by(Post.like_count.desc(), Post.id.desc())
        .limit(TOP_REMIXES)
    )
    return [
        Link(post_id, handle, prompt, likes, parent_id if depth > 1 else None)
        for post_id, handle, prompt, likes, parent_id, depth in rows
    ]


def _line(link: Link) -> str:
    if link.author is None:
        return "… a deleted post"
    prompt = link.prompt if len(link.prompt) <= 50 else link.prompt[:49] + "…"
    via = f", remixing #{link.parent_id}" if link.parent_id is not None else ""
    return f"#{link.post_id} by @{link.author}: {prompt} (❤️ {link.like_count}{via})"


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
