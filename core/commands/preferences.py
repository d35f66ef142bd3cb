"""/digest and /notify: when and whether the network may write to you first."""

from __future__ import annotations

from sqlalchemy import select

from core.cards import shorten
from core.commands.registry import Context, command
from core.config import is_known_zone, parse_clock
from core.errors import UserError
from core.feed.digest import digest_key
from core.feed.localtime import digest_clock, digest_due, next_digest, zone_of
from core.models import Delivery, utcnow
from core.params import Param, ParamType, UsageError
from core.replies import Reply

ZONE_ECHO = 40  # a wrong zone is named back, but not a page of it


def _zone(name: str) -> str:
    if not is_known_zone(name):
        shown = shorten(name, ZONE_ECHO)
        raise UserError(f"I don't know the time zone {shown!r}. Use a name like Europe/Berlin or America/New_York.")
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


@command(
    "digest",
    "your daily digest: show, switch, or set its time",
    params=(
        Param("when", ParamType.WORD, "on, off, or the time it comes, such as 08:30"),
        Param("zone", ParamType.WORD, "your time zone, such as Europe/Berlin"),
    ),
    examples=("/digest on", "/digest off", "/digest 08:30 Europe/Berlin"),
)
async def digest(ctx: Context, when: str | None, zone: str | None) -> list[Reply]:
    if when is None:
        if zone is not None:
            raise UsageError
        return [Reply(text=await _digest_status(ctx))]
    if when.lower() in ("on", "off") and zone is None:  # as /notify: any case
        ctx.person.digest_enabled = when.lower() == "on"
    else:
        try:
            at = parse_clock(when)
        except ValueError:
            raise UsageError from None
        ctx.person.digest_time = f"{at:%H:%M}"
        ctx.person.digest_enabled = True
        if zone is not None:
            ctx.person.timezone = _zone(zone)
    await ctx.session.flush()
    return [Reply(text=await _digest_status(ctx))]


@command(
    "notify",
    "messages when people follow you, like or remix your posts",
    params=(Param("setting", ParamType.CHOICE, "turn them on or off", choices=("on", "off")),),
    examples=("/notify on", "/notify off"),
)
async def notify(ctx: Context, setting: str | None) -> list[Reply]:
    if setting is not None:
        ctx.person.notify_enabled = setting == "on"
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
