"""Helpers for the safety tests: where a post shows up, as each person sees it."""

from __future__ import annotations

import asyncio
import json

from sqlalchemy import delete, func, select

from core.app import Core
from core.feed.digest import compose_pass
from core.models import AuditEntry, Delivery, Post, utcnow
from core.replies import Reply
from tests.fakes.platform import person_id
from tests.support import Chat


def post_ids(replies: list[Reply]) -> list[int]:
    return [r.post_id for r in replies if r.post_id is not None]


async def in_feed(chat: Chat, who: str) -> list[int]:
    return post_ids(await chat.say(who, "/feed"))


async def in_top(chat: Chat, who: str) -> list[int]:
    return post_ids(await chat.say(who, "/top"))


async def on_profile(chat: Chat, who: str, whose: str) -> str:
    return await chat.text(who, f"/profile {whose}")


async def in_digest(core: Core, who: str) -> list[int]:
    """The posts a digest composed now would give `who` (earlier digest rows are cleared first)."""
    async with core.sessions() as session:
        await session.execute(delete(Delivery).where(Delivery.kind == "digest"))
        await session.commit()
    await compose_pass(core.sessions, core.settings, utcnow(), force=True)
    pid = await person_id(core, who)
    async with core.sessions() as session:
        row = await session.scalar(select(Delivery).where(Delivery.kind == "digest", Delivery.person_id == pid))
    if row is None or row.status != "pending":
        return []
    return list(json.loads(row.payload)["posts"])


async def post_row(core: Core, post_id: int) -> Post | None:
    async with core.sessions() as session:
        return await session.get(Post, post_id)


async def audit_actions(core: Core) -> list[tuple[str, int | None]]:
    async with core.sessions() as session:
        rows = await session.execute(select(AuditEntry.action, AuditEntry.target_post_id).order_by(AuditEntry.id))
        return [(action, post_id) for action, post_id in rows]


async def audit_count(core: Core) -> int:
    async with core.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(AuditEntry)) or 0)


async def drained(core: Core) -> None:
    core.outbox.wake()
    async with asyncio.timeout(60):  # generous: the machine is shared
        await core.drain()
