"""Completions for a parameter as it is typed (Discord's autocomplete): cheap, index-backed queries
that never create anyone or write anything."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core import people
from core.actor import Actor
from core.models import Person, Post
from core.params import Param, ParamType

MAX_SUGGESTIONS = 25  # Discord shows at most 25
LABEL_MAX = 100  # Discord's limit on a choice's name
RECENT_POSTS = 100  # own posts looked at for a post number; a prefix narrows these down


@dataclass(frozen=True, slots=True)
class Suggestion:
    label: str  # what the person sees
    value: str  # what is filled in: a value the parameter's parser accepts


async def suggestions(session: AsyncSession, actor: Actor, param: Param, prefix: str) -> list[Suggestion]:
    typed = prefix.strip()
    if param.type is ParamType.HANDLE:
        return await _handles(session, typed.removeprefix("@").lower())
    if param.type is ParamType.POST:
        return await _own_posts(session, actor, typed.removeprefix("#"))
    if param.type is ParamType.CHOICE:
        return [Suggestion(c, c) for c in param.choices if c.lower().startswith(typed.lower())][:MAX_SUGGESTIONS]
    return []


async def _handles(session: AsyncSession, prefix: str) -> list[Suggestion]:
    if prefix and people.normalize_handle(prefix) != prefix:
        return []  # not the start of any handle
    query = select(Person.handle).order_by(Person.handle).limit(MAX_SUGGESTIONS)
    if prefix:
        # A range on the unique index rather than LIKE, which SQLite (case-insensitive LIKE on a
        # binary column) and PostgreSQL (outside the C collation) cannot answer from the index.
        # Handles are ASCII, so the prefix with its last character stepped up bounds them all in
        # byte order; under a linguistic collation a few handles with "_" may be missed, never a
        # wrong one offered (the check below), which is fine for suggestions.
        above = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        query = query.where(Person.handle >= prefix, Person.handle < above)
    handles = await session.scalars(query)
    return [Suggestion(f"@{h}", h) for h in handles if h.startswith(prefix)]


async def _own_posts(session: AsyncSession, actor: Actor, prefix: str) -> list[Suggestion]:
    if prefix and not (prefix.isascii() and prefix.isdigit()):
        return []
    identity = await people.find_identity(session, actor)
    if identity is None:
        return []
    rows = await session.execute(
        select(Post.id, Post.prompt)
        .where(Post.author_id == identity.person_id)
        .order_by(Post.id.desc())
        .limit(RECENT_POSTS)
    )
    found = [Suggestion(_label(post_id, prompt), str(post_id)) for post_id, prompt in rows]
    return [s for s in found if s.value.startswith(prefix)][:MAX_SUGGESTIONS]


def _label(post_id: int, prompt: str) -> str:
    label = f"#{post_id} {' '.join(prompt.split())}"
    return label if len(label) <= LABEL_MAX else label[: LABEL_MAX - 1] + "…"
