"""Where to reach a person on their own initiative: the platform where they were last active."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.models import Identity


@dataclass(frozen=True, slots=True)
class Target:
    platform: str
    chat_id: str


async def reachable_targets(session: AsyncSession, person_ids: list[int]) -> dict[int, Target]:
    """People who blocked the bot everywhere, or never gave a chat, have no target."""
    rows = await session.execute(
        select(Identity.person_id, Identity.platform, Identity.chat_id)
        .where(
            Identity.person_id.in_(person_ids),
            Identity.unreachable.is_(False),
            Identity.chat_id.is_not(None),
        )
        .order_by(Identity.person_id, Identity.last_seen_at)
    )
    # Ordered by last_seen_at, so the latest identity of each person wins.
    return {person_id: Target(platform, chat_id) for person_id, platform, chat_id in rows if chat_id is not None}
