"""People and their platform identities; handles unique across every platform."""

from __future__ import annotations

import itertools
import re
import unicodedata
from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, Row, Select, bindparam, exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from core.actor import Actor
from core.admins import Admins
from core.errors import UserError
from core.models import Block, Identity, Person, utcnow
from core.text import clean, clean_name, platform_name, strip_bidi

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
        raise UserError(f"{strip_bidi(raw).strip() or 'That'} is not a handle. Handles look like @alice.")
    return handle


async def free_handle(session: AsyncSession, wanted: str, platform_id: str, admins: Admins) -> str:
    """`wanted`, or `wanted2`, `wanted3`...: the first that nobody has and that is not kept for someone else."""
    base = wanted if len(wanted) >= 3 else f"{wanted}user".strip("_") or "user"
    taken = set((await session.scalars(select(Person.handle).where(Person.handle.like(f"{base[:16]}%")))).all())
    candidates = itertools.chain([base[:16]], (f"{base[:16]}{n}" for n in itertools.count(2)))
    if len(base) > 16:  # a handle ADMINS keeps may be up to 20 long: try it whole first
        candidates = itertools.chain([base], candidates)
    return next(c for c in candidates if c not in taken and admins.may_take(c, platform_id))


async def find_identity(session: AsyncSession, actor: Actor) -> Identity | None:
    return await session.scalar(
        select(Identity).where(Identity.platform == actor.platform, Identity.platform_user_id == actor.user_id)
    )


# The identity and its person in one round trip: every command starts here. Built once, with bound parameters:
# building the statement and its cache key on every call cost about 60 us (bench/README.md).
_WHO = (
    select(Identity, Person)
    .join(Person, Person.id == Identity.person_id)
    .where(Identity.platform == bindparam("platform"), Identity.platform_user_id == bindparam("user_id"))
)


async def ensure_person(session: AsyncSession, actor: Actor, admins: Admins | None = None) -> tuple[Person, bool]:
    """The person behind this actor, created on first contact. Returns (person, created)."""
    person = await known_person(session, actor)
    if person is not None:
        return person, False
    return await _create_person(session, actor, admins or Admins()), True


async def known_person(session: AsyncSession, actor: Actor) -> Person | None:
    """The person behind this actor if there is one, their identity touched (which makes the session
    dirty when contact is due to be recorded)."""
    found = (await session.execute(_WHO, {"platform": actor.platform, "user_id": actor.user_id})).first()
    if found is None:
        return None
    identity, person = found
    # Touch after the load: an autoflush would empty `session.dirty`, and the caller commits only when dirty.
    _touch(identity, actor)
    return person


def _touch(identity: Identity, actor: Actor) -> None:
    """Record contact, writing only what changed so that most commands stay read-only."""
    now = utcnow()
    if now - identity.last_seen_at > SEEN_RESOLUTION:
        identity.last_seen_at = now
    if identity.unreachable:
        identity.unreachable = False  # writing to us again means they can be reached again
    if actor.own_chat and identity.chat_id != actor.own_chat:
        identity.chat_id = actor.own_chat
    username = _username(actor)
    if username and identity.username != username:
        identity.username = username


def _username(actor: Actor) -> str | None:
    return platform_name(actor.username or "") or None


async def _create_person(session: AsyncSession, actor: Actor, admins: Admins) -> Person:
    # The platform's name is written by the person: cleaned like anything they type.
    display = platform_name(actor.display_name or "")
    derived = normalize_handle(_username(actor) or display) or f"{actor.platform}{actor.user_id}"
    wanted = admins.handle_for(actor.platform_id) or derived
    name = (display or _username(actor) or wanted)[:MAX_NAME]
    for _attempt in range(5):
        handle = await free_handle(session, wanted, actor.platform_id, admins)
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
                        username=_username(actor),
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


def by_handle_query(*columns: ColumnElement[Any]) -> Select[Any]:
    """The person by handle, whether they block the viewer, whether the viewer blocks them, then `columns`
    (about the person: correlated to `Person.id`). Built once per use, like _WHO."""
    return select(
        Person,
        exists().where(Block.blocker_id == Person.id, Block.blocked_id == bindparam("viewer_id")),
        exists().where(Block.blocker_id == bindparam("viewer_id"), Block.blocked_id == Person.id),
        *columns,
    ).where(Person.handle == bindparam("handle"))


_BY_HANDLE_FOR = by_handle_query()


async def by_handle_for(session: AsyncSession, raw: str, viewer: Person) -> tuple[Person, bool]:
    """The person by handle, and whether `viewer` blocks them, in one statement: /profile and /follow
    need both. Someone who blocks `viewer` is answered as nobody at all: the blocked person gets the
    same answer as for a handle that does not exist, as for a post they cannot see, and is not told."""
    person, blocks_them, _ = await find_for(session, raw, viewer, _BY_HANDLE_FOR)
    return person, blocks_them


async def find_for(
    session: AsyncSession, raw: str, viewer: Person, query: Select[Any]
) -> tuple[Person, bool, Row[Any]]:
    """`by_handle_for` with a query of `by_handle_query`: also the row, whose columns from the fourth on are
    the query's own."""
    handle = parse_handle(raw)
    found = (await session.execute(query, {"handle": handle, "viewer_id": viewer.id})).first()
    if found is None or found[1]:
        raise UserError(f"Nobody is called @{handle}.")
    return found[0], bool(found[2]), found


async def platform_ids(session: AsyncSession, person_id: int) -> tuple[str, ...]:
    rows = await session.execute(
        select(Identity.platform, Identity.platform_user_id).where(Identity.person_id == person_id)
    )
    return tuple(f"{platform}:{user_id}" for platform, user_id in rows)


def set_display_name(person: Person, value: str) -> None:
    value = clean_name(value)
    if not value:
        raise UserError("Give a name, for example: /name Ada Lovelace")
    if len(value) > MAX_NAME:
        raise UserError(f"Names can be at most {MAX_NAME} characters.")
    person.display_name = value


def set_bio(person: Person, value: str) -> None:
    value = clean(value).strip()
    if len(value) > MAX_BIO:
        raise UserError(f"A bio can be at most {MAX_BIO} characters.")
    person.bio = value
