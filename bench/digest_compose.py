"""Part (a): time `core.feed.digest.compose_pass` over everyone in the network, from an empty outbox."""

from __future__ import annotations

import resource
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import func, select

from bench.digest_floor import Floor, recording, replay
from bench.digest_network import clear_outbox
from bench.machine import CpuWatch, describe_load, is_quiet
from core import sqlite_inline
from core.config import Settings
from core.db import create_engine, create_sessionmaker
from core.feed.digest import CHUNK, PassStats, compose_pass
from core.models import Delivery, Person, utcnow

TARGET_SECONDS = {"sqlite": 12.0, "postgresql": 60.0}  # issue 12 for SQLite; the earlier target on PostgreSQL
TARGET_PEOPLE = 100_000  # the target is for this many; smaller networks are held to the same cost per person

Say = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Composed:
    stats: PassStats
    people: int
    statuses: dict[str, int]
    load: str
    quiet: bool
    floor: Floor
    target: float  # seconds for TARGET_PEOPLE on this database

    @property
    def per_person_ms(self) -> float:
        """Over everyone in the network: people with digests off are part of the pass's work too."""
        return 1000 * self.stats.seconds / max(1, self.people)

    @property
    def for_target(self) -> float:
        """Seconds for TARGET_PEOPLE at this cost per person (the measured total, at full scale)."""
        return self.per_person_ms * TARGET_PEOPLE / 1000

    @property
    def floor_per_person_ms(self) -> float:
        return 1000 * self.floor.seconds / max(1, self.people)

    @property
    def ratio(self) -> float:
        """The pass's time over its floor's, in the same run on the same file."""
        return self.stats.seconds / max(self.floor.seconds, 1e-9)


async def compose(url: str, settings: Settings) -> Composed:
    engine = create_engine(url)
    try:
        await clear_outbox(engine)
        watch = CpuWatch.start()
        # In the background, as the scheduler runs it (core.scheduler).
        with recording(engine) as statements, sqlite_inline.background():
            stats = await compose_pass(create_sessionmaker(engine), settings, utcnow(), force=True)
        async with engine.connect() as conn:
            people = await conn.scalar(select(func.count()).select_from(Person)) or 0
            rows = await conn.execute(select(Delivery.status, func.count()).group_by(Delivery.status))
            statuses = {status: count for status, count in rows}
        target = TARGET_SECONDS[engine.dialect.name]
    finally:
        await engine.dispose()
    floor = await replay(url, statements)
    load = watch.stop()
    return Composed(stats, people, statuses, describe_load(load), is_quiet(load), floor, target)


def report(composed: Composed, rate: float, say: Say) -> None:
    stats = composed.stats
    verdict = "ok" if composed.for_target <= composed.target else "OVER"
    if not composed.quiet:
        verdict = "not judged: machine busy"
    scaled = "" if composed.people == TARGET_PEOPLE else f"; {composed.for_target:.1f} s at this cost per person"
    say(
        f"  compose_pass: {composed.people:,} people in {stats.seconds:.2f} s total, {composed.per_person_ms:.3f} ms "
        f"per person, in chunks of {CHUNK:,} (target: {TARGET_PEOPLE:,} people in at most {composed.target:g} s"
        f"{scaled}: {verdict})"
    )
    say(
        f"  floor (the same {composed.floor.statements:,} composition queries through the driver, same file): "
        f"{composed.floor.seconds:.2f} s, {composed.floor_per_person_ms:.3f} ms per person; "
        f"compose_pass is {composed.ratio:.1f}x its floor"
    )
    say(
        f"  outbox rows: {composed.statuses.get('pending', 0):,} queued, {composed.statuses.get('skipped', 0):,} "
        f"skipped ({stats.empty:,} nothing new, {stats.unreachable:,} unreachable); "
        f"{composed.people - stats.considered:,} people with digests off; {len(stats.dates)} local dates"
    )
    sending = composed.statuses.get("pending", 0) / rate
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    say(
        f"  sending them at {rate:g}/s takes {sending:,.0f} s, {sending / max(stats.seconds, 1e-9):,.0f} times the "
        f"composing; peak memory of this process so far {peak:,.0f} MB"
    )
    say(f"  {composed.load}")
