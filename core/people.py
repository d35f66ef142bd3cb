"""People and their platform identities; handles unique across every platform."""

from __future__ import annotations

import re
import unicodedata
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from core.actor import Actor
from core.errors import UserError
from core.models import Identity, Person, utcnow

HANDLE_RE = re.compile(r"^[a-z0-9_]{3,20}$")
MAX_NAME = 64
MAX_BIO = 280
SEEN_RESOLUTION = timedelta(minutes=5)  # last_seen_at is refreshed at most this often


def normalize_handle(raw: str) -> str:
    """Lower-case ASCII letters, digits and underscores; accents folded, the rest dropped."""
    folded = unicodedata.normalize("NFKD", raw).encode("ascii", "ignore").decode()
    cleaned = re.sub(r"[^a-z0-9_]+", "_", folded.lower()).strip("_")
    return cleaned[:20]


def parse_handle(raw: str) -> str:
    """A handle as written by a person: `@alice` or `alice`."""
    handle = raw.strip().removeprefix("@").lower()
    if not HANDLE_RE.match(handle):
        raise UserError(f"{raw.strip() or 'That'} is not a handle. Handles look like @alice.")
    return handle


async def _free_handle(session: AsyncSession, wanted: str) -> str:
    base = wanted if len(wanted) >= 3 else f"{wanted}user".strip("_") or "user"
    base = base[:16]
    taken = set((await session.scalars(select(Person.handle).where(Person.handle.like(f"{base}%")))).all())
    if base not in taken:
        return base
    suffix = 2
    while f"{base}{suffix}" in taken:
        suffix += 1
    return f"{base}{suffix}"


async def find_identity(session: AsyncSession, actor: Actor) -> Identity | None:
    return await session.scalar(
        select(Identity).where(Identity.platform == actor.platform, Identity.platform_user_id == actor.user_id)
    )


async def ensure_person(session: AsyncSession, actor: Actor) -> tuple[Person, bool]:
    """The person behind this actor, created on first contact. Returns (person, created)."""
    identity = await find_identity(session, actor)
    if identity is not None:
        person = await session.get(Person, identity.person_id)
        assert person is not None
        # Touch after the load: an autoflush would empty `session.dirty`, and the caller commits only when dirty.
        _touch(identity, actor)
        return person, False
    return await _create_person(session, actor), True


def _touch(identity: Identity, actor: Actor) -> None:
    """Record contact, writing only what changed so that most commands stay read-only."""
    now = utcnow()
    if now - identity.last_seen_at > SEEN_RESOLUTION:
        identity.last_seen_at = now
    if identity.unreachable:
        identity.unreachable = False  # writing to us again means they can be reached again
    if actor.own_chat and identity.chat_id != actor.own_chat:
        identity.chat_id = actor.own_chat
    if actor.username and identity.username != actor.username:
        identity.username = actor.username


async def _create_person(session: AsyncSession, actor: Actor) -> Person:
    wanted = normalize_handle(actor.username or actor.display_name or "") or f"{actor.platform}{actor.user_id}"
    name = (actor.display_name or actor.username or wanted)[:MAX_NAME]
    for _attempt in range(5):
        handle = await _free_handle(session, wanted)
        try:
            async with session.begin_nested():
                person = Person(handle=handle, display_name=name, bio="")
                session.add(person)
                await session.flush()
                session.add(
                    Identity(
                        person_id=person.id,
                        platform=actor.platform,
                        platform_user_id=actor.user_id,
                        chat_id=actor.own_chat,
                        username=actor.username,
                    )
                )
                await session.flush()
            return person
        except IntegrityError:
            # Another request took the handle (or created this identity) between our read and write.
            existing = await find_identity(session, actor)
            if existing is not None:
                found = await session.get(Person, existing.person_id)
                assert found is not None
                return found
    raise UserError("Could not create your profile right now; please try again.")


async def by_handle(session: AsyncSession, raw: str) -> Person:
    handle = parse_handle(raw)
    person = await session.scalar(select(Person).where(Person.handle == handle))
    if person is None:
        raise UserError(f"Nobody is called @{handle}.")
    return person


async def platform_ids(session: AsyncSession, person_id: int) -> tuple[str, ...]:
    rows = await session.execute(
        select(Identity.platform, Identity.platform_user_id).where(Identity.person_id == person_id)
    )
    return tuple(f"{platform}:{user_id}" for platform, user_id in rows)


def set_display_name(person: Person, value: str) -> None:
    value = " ".join(value.split())
    if not value:
        raise UserError("Give a name, for example: /name Ada Lovelace")
    if len(value) > MAX_NAME:
        raise UserError(f"Names can be at most {MAX_NAME} characters.")
    person.display_name = value


def set_bio(person: Person, value: str) -> None:
    value = value.strip()
    if len(value) > MAX_BIO:
        raise UserError(f"A bio can be at most {MAX_BIO} characters.")
    person.bio = value
