"""What operators run by hand: a digest pass now, and a preview of one person's digest."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from PIL import Image
from sqlalchemy import select

from core.app import Core
from core.errors import UserError
from core.feed.digest import WINDOW, PassStats, compose_pass, followed_picks, top_up, trending, window_since
from core.feed.digest_render import digest_reply, visible_views
from core.feed.localtime import zone_of
from core.models import Person, utcnow
from core.people import parse_handle

PREVIEW_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP"}


async def digest_now(core: Core, handle: str | None = None) -> PassStats:
    """Queue today's digest for everyone with digests on who has not had today's, whatever their hour
    (or for one person). The once-a-day rule holds: a second run queues nothing new."""
    if handle:
        await _person(core, handle)
    stats = await compose_pass(
        core.sessions, core.settings, utcnow(), force=True, handle=handle and parse_handle(handle)
    )
    core.outbox.wake()
    return stats


async def digest_preview(core: Core, handle: str, target: Path | None = None) -> Path:
    """Write the person's digest picture, as it would be sent now, to `target` (by default under
    MEDIA_DIR/previews, never the current folder) in the format its suffix names; nothing is sent."""
    if target is not None and target.suffix.lower() not in PREVIEW_FORMATS:
        raise UserError(f"A preview file must end in {', '.join(PREVIEW_FORMATS)}, not {target.name!r}.")
    person = await _person(core, handle)
    now = utcnow()
    async with core.sessions() as session:
        window = await window_since(session, now - WINDOW)
        picks = await followed_picks(session, [person.id], window, core.settings.digest_size)
        pool = await trending(session, now - WINDOW)
        posts = top_up(picks.get(person.id, []), pool, person.id, core.settings.digest_size)
        views = await visible_views(session, posts)
    if not views:
        raise UserError(f"@{person.handle} has nothing new for a digest right now.")
    today = now.astimezone(zone_of(person, core.settings))  # the person's date, not the server's
    reply = await digest_reply(core.media, f"Digest preview for @{person.handle}, {today:%d %B}", views)
    assert reply.image is not None
    target = target or core.settings.media_dir / "previews" / f"digest-{person.handle}.jpg"
    await asyncio.to_thread(_write_as, reply.image.path, target)
    return target


def _write_as(collage: Path, target: Path) -> None:
    """The collage is a JPEG; any other suffix gets the collage converted to that format."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fmt = PREVIEW_FORMATS[target.suffix.lower()]
    if fmt == "JPEG":
        shutil.copyfile(collage, target)
        return
    with Image.open(collage) as picture:
        picture.save(target, format=fmt)


async def _person(core: Core, handle: str) -> Person:
    async with core.sessions() as session:
        person = await session.scalar(select(Person).where(Person.handle == parse_handle(handle)))
    if person is None:
        raise UserError(f"Nobody is called @{parse_handle(handle)}.")
    return person
