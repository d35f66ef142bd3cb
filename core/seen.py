"""Updates a platform may deliver more than once (a retried webhook), possibly to two processes
of one deployment: the first process to record an update's id handles it, the others drop it."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.db import insert_ignore, rowcount
from core.models import SeenUpdate, utcnow

KEEP = timedelta(days=2)  # Telegram gives up redelivering an update long before this


async def first_sighting(sessions: async_sessionmaker[AsyncSession], platform: str, update_id: str) -> bool:
    """True for the one caller, in any process, that sees this update first."""
    async with sessions() as session:
        result = await session.execute(
            insert_ignore(session, SeenUpdate, platform=platform, update_id=update_id, seen_at=utcnow())
        )
        await session.commit()
    return rowcount(result) == 1


async def forget_old(session: AsyncSession) -> None:
    await session.execute(delete(SeenUpdate).where(SeenUpdate.seen_at < utcnow() - KEEP))
