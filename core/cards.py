"""How a post looks in any chat: caption and buttons, as plain reply data."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Row, Select, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from core.gen.media import MediaStore
from core.models import Person, Post
from core.replies import Button, Image, Reply
from core.visibility import DELETED, STATUS_NOTE

PROMPT_PREVIEW = 60


@dataclass(frozen=True, slots=True)
class PostView:
    post: Post
    author: str  # handle
    parent_author: str | None
    parent_deleted: bool = False  # soft-deleted: the row stays until the purge, the credit does not


# Built once: a fresh aliased() per call costs about 0.4 ms of SQLAlchemy column adaptation (bench/README.md).
_AUTHOR = aliased(Person, name="author")
_PARENT = aliased(Post, name="parent")
_PARENT_AUTHOR = aliased(Person, name="parent_author")


def with_card_data(query: Select[Post], post: Any = Post) -> Select[Post, str, str | None, str | None]:
    """`query`, which selects posts (`post`: the entity it selects, Post or an alias of it), with what
    their cards show of other rows: the author's handle, the parent's author and whether the parent
    was deleted. A page of cards is then one statement, not the page and then its handles."""
    return (
        query.add_columns(_AUTHOR.handle, _PARENT_AUTHOR.handle, _PARENT.status)
        .join(_AUTHOR, _AUTHOR.id == post.author_id)
        .outerjoin(_PARENT, _PARENT.id == post.parent_id)
        .outerjoin(_PARENT_AUTHOR, _PARENT_AUTHOR.id == _PARENT.author_id)
    )


def view_of(row: Row[Post, str, str | None, str | None] | tuple[Any, ...]) -> PostView:
    """A row of a `with_card_data` query as a card's data."""
    post, author, parent_author, parent_status = row
    return PostView(post, author, parent_author, parent_status == DELETED)


async def views(session: AsyncSession, posts: Iterable[Post]) -> list[PostView]:
    """Author and parent-author handles for posts already loaded, in one query, in the given order.
    Where the posts are yet to be read, a `with_card_data` query reads them with their handles at once."""
    posts = list(posts)
    if not posts:
        return []
    rows = await session.execute(
        select(Post.id, Person.handle, _PARENT_AUTHOR.handle, _PARENT.status)
        .join(Person, Person.id == Post.author_id)
        .outerjoin(_PARENT, _PARENT.id == Post.parent_id)
        .outerjoin(_PARENT_AUTHOR, _PARENT_AUTHOR.id == _PARENT.author_id)
        .where(Post.id.in_([p.id for p in posts]))
    )
    handles = {
        post_id: (author, parent_handle, parent_status == DELETED)
        for post_id, author, parent_handle, parent_status in rows
    }
    return [PostView(p, *handles[p.id]) for p in posts if p.id in handles]


def caption(view: PostView) -> str:
    post = view.post
    lines = [f"#{post.id} by @{view.author}", post.prompt]
    if post.parent_id is not None and not view.parent_deleted:
        credit = f" by @{view.parent_author}" if view.parent_author else ""
        lines.append(f"🔁 Remix of #{post.parent_id}{credit}")
    elif post.parent_id is not None or post.lineage:  # the parent was deleted; the chain goes on past it (/lineage)
        lines.append("🔁 Remix of a deleted post")
    if post.origin == "prompt-only":
        lines.append("(made from the prompt alone: this image model cannot start from a picture)")
    elif post.origin == "upload":
        lines.append("📷 Started from the author's own photo")
    if not post.is_public:
        lines.append("🔒 Private: only you can see it")
    if post.status in STATUS_NOTE:
        lines.append(STATUS_NOTE[post.status])
    return "\n".join(lines)


def post_buttons(view: PostView, viewer_id: int | None = None) -> tuple[tuple[Button, ...], ...]:
    """`viewer_id`: the one person who sees the card (see `card`)."""
    post = view.post
    follow = () if viewer_id == post.author_id else (Button(f"➕ Follow @{view.author}", f"follow {view.author}"),)
    return (
        (
            Button(f"❤️ {post.like_count}", f"like {post.id}"),
            Button("🔁 Remix", f"remix {post.id}"),
            Button("🎲 Variation", f"vary {post.id}"),
        ),
        (
            *follow,
            Button(f"💬 {post.comment_count}", f"comment {post.id}"),
            Button("🚩 Report", f"report {post.id}"),
        ),
    )


def card(view: PostView, media: MediaStore, *, edit: bool = False, viewer_id: int | None = None) -> Reply:
    """`viewer_id`: the person the card goes to alone (their one-to-one chat), who is not offered to
    follow themselves; None where others see it too (a gallery, a group)."""
    return Reply(
        text=caption(view),
        image=Image(media.path(view.post.image_path), caption(view)),
        buttons=post_buttons(view, viewer_id),
        edit=edit,
        post_id=view.post.id,
    )


_CARD_HEAD = re.compile(r"#(\d{1,18}) by @")


def post_of_card(text: str | None) -> int | None:
    """The post a card's caption shows ("#12 by @alice..."): a reply to a card is about that post."""
    found = _CARD_HEAD.match(text or "")
    return int(found.group(1)) if found else None


class Previewed(Protocol):
    """A post, or the few columns of one that a preview line shows."""

    @property
    def id(self) -> int: ...
    @property
    def prompt(self) -> str: ...
    @property
    def like_count(self) -> int: ...


def preview_line(post: Previewed) -> str:
    prompt = post.prompt if len(post.prompt) <= PROMPT_PREVIEW else post.prompt[: PROMPT_PREVIEW - 1] + "…"
    return f"#{post.id} {prompt} (❤️ {post.like_count})"


def shorten(value: str, limit: int) -> str:
    """Cut text to a platform's limit at a word boundary, marking the cut."""
    if len(value) <= limit:
        return value
    cut = value[: limit - 1]
    space = cut.rfind(" ")
    if space > limit * 0.6:
        cut = cut[:space]
    return cut.rstrip() + "…"


def plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"
