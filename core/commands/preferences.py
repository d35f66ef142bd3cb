"""/digest and /notify: when and whether the network may write to you first."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select

from core.commands.registry import Context, command
from core.config import parse_clock
from core.errors import UserError
from core.feed.digest import digest_key
from core.feed.localtime import digest_clock, digest_due, next_digest, zone_of
from core.models import Delivery, utcnow
from core.replies import Reply

DIGEST_USAGE = "Usage: /digest on, /digest off, or /digest 08:30 Europe/Berlin"


def _zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UserError(
            f"I don't know the time zone {name!r}. Use a name like Europe/Berlin or America/New_York."
        ) from None
    return name


async def _digest_status(ctx: Context) -> str:
    person, settings = ctx.person, ctx.core.settings
    if not person.digest_enabled:
        return "Your daily digest is off. Turn it on with /digest on."
    zone, at = zone_of(person, settings), digest_clock(person, settings)
    now = utcnow()
    _, today = digest_due(now, zone, at)
    sent = await ctx.session.scalar(select(Delivery.id).where(Delivery.key == digest_key(person.id, today)))
    upcoming = next_digest(now, zone, at, sent_today=sent is not None)
    # Today's is due but not out yet: the next scheduler pass sends it.
    when = "today's, in a few minutes" if upcoming <= now else f"{upcoming:%A %d %B, %H:%M}"
    return (
        f"Your daily digest comes at {at:%H:%M} ({zone.key}). "
        f"Next: {when}. Change it with /digest HH:MM [time zone], or /digest off."
    )


@command("digest", "/digest [on|off|HH:MM [time zone]]", "your daily digest: show, switch, or set its time")
async def digest(ctx: Context, args: str) -> list[Reply]:
    words = args.split()
    if not words:
        return [Reply(text=await _digest_status(ctx))]
    if len(words) == 1 and words[0].lower() in ("on", "off"):  # as /notify: any case
        ctx.person.digest_enabled = words[0].lower() == "on"
    elif len(words) <= 2:
        try:
            at = parse_clock(words[0])
        except ValueError:
            raise UserError(DIGEST_USAGE) from None
        ctx.person.digest_time = f"{at:%H:%M}"
        ctx.person.digest_enabled = True
        if len(words) == 2:
            ctx.person.timezone = _zone(words[1])
    else:
        raise UserError(DIGEST_USAGE)
    await ctx.session.flush()
    return [Reply(text=await _digest_status(ctx))]


@command("notify", "/notify [on|off]", "messages when people follow you, like or remix your posts")
async def notify(ctx: Context, args: str) -> list[Reply]:
    choice = args.strip().lower()
    if choice not in ("", "on", "off"):
        raise UserError("Usage: /notify on or /notify off")
    if choice:
        ctx.person.notify_enabled = choice == "on"
        await ctx.session.flush()
    quiet = ctx.core.settings.quiet_hours
    if not ctx.person.notify_enabled:
        return [Reply(text="Notifications are off. Turn them on with /notify on.")]
    minutes = f"{ctx.core.settings.notify_interval_minutes:g}"
    quiet_line = f", and none during quiet hours ({quiet}, your time)" if quiet else ""
    return [
        Reply(
            text=f"Notifications are on: at most one message every {minutes} minutes{quiet_line}. "
            "Turn them off with /notify off."
        )
    ]
