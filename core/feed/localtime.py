"""A person's own clock: their time zone, digest hour and quiet hours."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from core.config import Settings, parse_clock
from core.models import Person


def zone_of(person: Person, settings: Settings) -> ZoneInfo:
    return ZoneInfo(person.timezone or settings.default_timezone)


def digest_clock(person: Person, settings: Settings) -> time:
    return parse_clock(person.digest_time or settings.digest_time)


def local_now(now: datetime, zone: ZoneInfo) -> datetime:
    return now.astimezone(zone)


def digest_due(now: datetime, zone: ZoneInfo, at: time) -> tuple[bool, date]:
    """Whether today's digest time has passed on the person's clock, and their today.
    On a spring-forward day an hour that does not exist is simply passed by the jump."""
    local = now.astimezone(zone)
    return local.time().replace(second=0, microsecond=0) >= at, local.date()


def next_digest(now: datetime, zone: ZoneInfo, at: time, sent_today: bool) -> datetime:
    """When the next digest goes out, as an aware local datetime: `now` itself when today's is due
    and not yet out (the next pass sends it; a time set earlier than now still counts today)."""
    local = now.astimezone(zone)
    candidate = datetime.combine(local.date(), at, tzinfo=zone)
    if not sent_today and candidate <= local:
        return local
    if sent_today:
        candidate = datetime.combine(local.date() + timedelta(days=1), at, tzinfo=zone)
    return candidate


def in_quiet_hours(now: datetime, zone: ZoneInfo, quiet: str) -> bool:
    """`quiet` is "HH:MM-HH:MM" in local time and may wrap past midnight; "" means never quiet."""
    if not quiet:
        return False
    start_s, _, end_s = quiet.partition("-")
    start, end = parse_clock(start_s), parse_clock(end_s)
    current = now.astimezone(zone).time()
    if start <= end:
        return start <= current < end
    return current >= start or current < end
