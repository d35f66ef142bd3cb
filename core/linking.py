"""One person on several platforms: one-time link codes, redeeming them, and splitting off again.

`/link` on one platform makes a code; `/link <code>` on another merges the two people (see
core.merging) in the command's own transaction. Only a hash of the code is stored. Failed
redeems are counted per person, so a code cannot be guessed in the ten minutes it lives.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import NoReturn

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from core import outbox, people
from core.admins import Admins
from core.db import rowcount
from core.errors import UserError
from core.merging import MergeStats, merge_people, older_first
from core.models import Identity, LinkCode, LinkGuess, Person, utcnow

# No 0/O, 1/I/L: a code read off one screen and typed on another must not be misread.
ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 8  # 31**8 is about 8.5e11 codes
CODE_LIFETIME = timedelta(minutes=10)
GUESS_LIMIT = 5
GUESS_WINDOW = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class Linked:
    survivor: Person
    code_id: int
    absorbed_handle: str | None  # None: the two were one person already (a repeated redeem)
    stats: MergeStats | None


def platform_name(platform: str) -> str:
    return platform.title()


def _normalize(code: str) -> str:
    return "".join(code.split()).replace("-", "").upper()


def _hash(code: str) -> str:
    return hashlib.sha256(_normalize(code).encode()).hexdigest()


def _new_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


def shown(code: str) -> str:
    """Two groups of four read more easily; dashes and spaces are ignored when typed back."""
    return f"{code[:4]}-{code[4:]}"


async def platforms(session: AsyncSession, person_id: int) -> list[str]:
    rows = await session.scalars(select(Identity.platform).where(Identity.person_id == person_id).distinct())
    return sorted(rows)


async def create_code(session: AsyncSession, person: Person, identity: Identity) -> str:
    """A fresh code for this identity; any earlier unused one stops working."""
    assert identity.person_id == person.id
    await session.execute(delete(LinkCode).where(LinkCode.identity_id == identity.id, LinkCode.used_at.is_(None)))
    now = utcnow()
    for _attempt in range(5):
        code = _new_code()
        try:
            async with session.begin_nested():
                session.add(
                    LinkCode(
                        code_hash=_hash(code), identity_id=identity.id, created_at=now, expires_at=now + CODE_LIFETIME
                    )
                )
            return code
        except IntegrityError:
            continue  # the same code is alive elsewhere (about one chance in 10^11): draw again
    raise UserError("Could not make a code right now; please try again.")


async def _lock_identity(session: AsyncSession, identity: Identity) -> int:
    """Write to the redeemer's identity row first: on SQLite that takes the write lock, on PostgreSQL
    the row lock, so one person's redeems run one after the other. Returns its person, read after the
    lock (an earlier redeem may have merged it into another)."""
    await session.execute(
        update(Identity)
        .where(Identity.id == identity.id)
        .values(person_id=Identity.person_id)
        .execution_options(synchronize_session=False)
    )
    person_id = await session.scalar(select(Identity.person_id).where(Identity.id == identity.id))
    assert person_id is not None
    return int(person_id)


async def _guesses_left(session: AsyncSession, person_id: int) -> int:
    mine = select(Identity.id).where(Identity.person_id == person_id)
    since = utcnow() - GUESS_WINDOW
    used = await session.scalar(
        select(func.count()).where(LinkGuess.identity_id.in_(mine), LinkGuess.created_at > since)
    )
    return GUESS_LIMIT - int(used or 0)


class LinkRefused(Exception):
    """A failed redeem that must still be committed (it counts against the guess limit)."""


async def redeem(session: AsyncSession, actor_identity: Identity, code: str) -> Linked:
    """Join the code's person and the redeemer's into one; raises UserError (nothing to record) or
    LinkRefused (a failed guess, recorded: the caller commits and shows the message)."""
    person_id = await _lock_identity(session, actor_identity)
    if await _guesses_left(session, person_id) <= 0:
        raise UserError("Too many wrong codes. Wait ten minutes, then send /link on your other account for a new one.")
    found = await session.scalar(select(LinkCode).where(LinkCode.code_hash == _hash(code)))
    owner = await session.get(Identity, found.identity_id, populate_existing=True) if found else None
    if found is None or owner is None:
        await _refuse(
            session,
            actor_identity,
            "That code is not right. Check it, or send /link on your other account for a new one.",
        )
    if owner.person_id == person_id:
        if owner.id == actor_identity.id:
            raise UserError("That code is for your other account: send /link <code> there.")
        await _use(session, found)  # a repeated redeem, or the same code twice: already one person
        return Linked(await _person(session, person_id), found.id, None, None)
    if found.used_at is not None:
        await _refuse(
            session, actor_identity, "That code was already used. Send /link on your other account for a new one."
        )
    if found.expires_at <= utcnow():
        await _refuse(
            session,
            actor_identity,
            "That code has expired (codes last 10 minutes). Send /link on your other account for a new one.",
        )
    await _check_platforms(session, person_id, owner.person_id)
    if not await _use(session, found):
        # A simultaneous redeem took it between our read and our write.
        await _refuse(
            session, actor_identity, "That code was already used. Send /link on your other account for a new one."
        )
    return await _merge(session, found.id, person_id, owner.person_id)


async def _refuse(session: AsyncSession, identity: Identity, message: str) -> NoReturn:
    session.add(LinkGuess(identity_id=identity.id, created_at=utcnow()))
    await session.flush()
    raise LinkRefused(message)


async def _use(session: AsyncSession, code: LinkCode) -> bool:
    result = await session.execute(
        update(LinkCode)
        .where(LinkCode.id == code.id, LinkCode.used_at.is_(None))
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return rowcount(result) == 1


async def _check_platforms(session: AsyncSession, first: int, second: int) -> None:
    both = set(await platforms(session, first)) & set(await platforms(session, second))
    if both:
        names = ", ".join(platform_name(p) for p in sorted(both))
        raise UserError(f"Both accounts are on {names}; a profile has one account per platform.")


async def _person(session: AsyncSession, person_id: int) -> Person:
    person = await session.get(Person, person_id, populate_existing=True, with_for_update=True)
    assert person is not None
    return person


async def _merge(session: AsyncSession, code_id: int, first_id: int, second_id: int) -> Linked:
    # Locked in id order, so two merges touching the same people cannot deadlock; the lock also holds
    # off rows inserted meanwhile for the person that is about to go (PostgreSQL's key-share lock).
    low, high = sorted((first_id, second_id))
    survivor, absorbed = older_first(await _person(session, low), await _person(session, high))
    absorbed_handle = absorbed.handle
    stats = await merge_people(session, survivor, absorbed)
    return Linked(survivor, code_id, absorbed_handle, stats)


async def tell(session: AsyncSession, identity: Identity, key: str, text: str) -> None:
    """A message to one of the person's other accounts, through the outbox, if it can be reached."""
    if identity.chat_id is None or identity.unreachable:
        return
    await outbox.add(
        session,
        key=key,
        platform=identity.platform,
        chat_id=identity.chat_id,
        kind="text",
        payload={"text": text},
        person_id=identity.person_id,
    )


async def identities_of(session: AsyncSession, person_id: int) -> list[Identity]:
    return list(await session.scalars(select(Identity).where(Identity.person_id == person_id).order_by(Identity.id)))


async def unlink(session: AsyncSession, person: Person, platform: str, admins: Admins) -> tuple[Identity, Person]:
    """Move this platform's identity to a fresh person; posts and follows stay with the profile."""
    mine = await identities_of(session, person.id)
    leaving = [i for i in mine if i.platform == platform]
    if not leaving:
        raise UserError(f"Your profile has no {platform_name(platform)} account.")
    if len(mine) == len(leaving):
        raise UserError(f"{platform_name(platform)} is your only account; there is nothing to unlink.")
    [identity] = leaving
    wanted = people.normalize_handle(identity.username or "") or f"{identity.platform}{identity.platform_user_id}"
    handle = await people.free_handle(session, wanted, f"{identity.platform}:{identity.platform_user_id}", admins)
    fresh = Person(handle=handle, display_name=identity.username or wanted, bio="")
    session.add(fresh)
    await session.flush()
    identity.person_id = fresh.id
    await session.execute(delete(LinkCode).where(LinkCode.identity_id == identity.id, LinkCode.used_at.is_(None)))
    await session.flush()
    await session.refresh(fresh)
    return identity, fresh


def code_message(code: str) -> str:
    return (
        f"Your link code: {shown(code)}\n"
        f"On your other platform, send /link {shown(code)} within 10 minutes to make the two accounts one "
        "profile. The code works once; don't share it."
    )


async def linked_message(session: AsyncSession, result: Linked, redeemer: Identity) -> str:
    """What the redeemer is told; the person's other accounts get a message through the outbox."""
    handle = result.survivor.handle
    names = " and ".join(platform_name(p) for p in await platforms(session, result.survivor.id))
    if result.absorbed_handle is None:
        return f"Your accounts are already linked: one profile, @{handle}, on {names}."
    text = (
        f"Linked: your {names} accounts are now one profile, @{handle}. The posts, likes and follows of "
        f"@{result.absorbed_handle} are now @{handle}'s. Settings (/digest, /notify, time zone) are those of "
        f"@{handle}. /unlink <platform> splits an account off again."
    )
    for other in await identities_of(session, result.survivor.id):
        if other.id != redeemer.id:
            await tell(session, other, f"linked:{result.code_id}:{other.id}", text)
    return text


async def unlink_message(
    session: AsyncSession, person: Person, speaker: Identity, platform: str, admins: Admins
) -> str:
    identity, fresh = await unlink(session, person, platform, admins)
    name = platform_name(identity.platform)
    text = (
        f"Your {name} account is now a profile of its own, @{fresh.handle}. "
        f"Posts, follows and likes stay with @{person.handle}."
    )
    if identity.id != speaker.id:
        await tell(session, identity, f"unlinked:{identity.id}:{fresh.id}", text)
    return text
