"""The platforms' own ids of the post pictures we sent (core.models.SentFile): a platform that
re-encodes photos (Telegram) drops the signature core.provenance embeds, but hands the very file
back with the same id when a person forwards it, so /verify still knows it."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.db import insert_ignore_many
from core.models import SentFile, utcnow


async def record(session: AsyncSession, platform: str, fingerprints: tuple[str, ...], post_id: int) -> None:
    if not fingerprints:
        return
    rows = [{"platform": platform, "fingerprint": f, "post_id": post_id, "sent_at": utcnow()} for f in fingerprints]
    await session.execute(insert_ignore_many(session, SentFile), rows)


async def post_of(session: AsyncSession, platform: str, fingerprint: str) -> int | None:
    found = await session.scalar(
        select(SentFile.post_id).where(SentFile.platform == platform, SentFile.fingerprint == fingerprint)
    )
    return int(found) if found is not None else None
