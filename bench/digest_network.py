"""The network the digest benchmark composes for: bench/network.py's skewed graph over the last 48 hours,
with digest preferences spread over time zones and hours, and a few people who blocked the bot.

It reuses bench/network.py (the draw) and bench/load.py (bulk loading, caching, moving stale data to the
present); only the people and identity rows differ, and no like rows are inserted: the digest reads
`like_count` and `hot` on the posts, never the likes table.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from bench import load
from bench.network import (
    DAY,
    FOLLOW_COLUMNS,
    IDENTITY_COLUMNS,
    PLATFORM,
    POST_COLUMNS,
    Network,
    Row,
    Shape,
    _batched,
    chat_of,
    handle_of,
)  # fmt: skip
from core.db import create_engine
from core.migrate import upgrade

SEED = 5005
PG_DATABASE = "bench_digest"  # our own database on the server; the default shape's, others get a suffix

PEOPLE_COLUMNS = ("id", "handle", "display_name", "bio", "created_at", "timezone", "digest_enabled", "digest_time")
# (zone, share): half the people keep the default zone; the rest are spread, unevenly, over eight.
ZONES: tuple[tuple[str | None, float], ...] = (
    (None, 0.50), ("Europe/Berlin", 0.12), ("America/New_York", 0.10), ("Asia/Kolkata", 0.08),
    ("Europe/London", 0.06), ("America/Los_Angeles", 0.05), ("Asia/Tokyo", 0.04), ("America/Sao_Paulo", 0.03),
    ("Australia/Sydney", 0.02),
)  # fmt: skip
HOURS: tuple[tuple[str | None, float], ...] = ((None, 0.80), ("07:30", 0.08), ("08:00", 0.07), ("12:00", 0.05))
DIGEST_OFF = 0.02  # turned their digest off
UNREACHABLE = 0.01  # blocked the bot

Say = Callable[[str], None]


def digest_shape(people: int, follows: int, posts: int) -> Shape:
    """Posts over the last two days; likes only shape `like_count` (two per post on average)."""
    return Shape(people, min(follows, people * (people - 1) // 4), posts, 2 * posts, days=2)


class DigestNetwork(Network):
    def people_rows(self) -> Iterator[list[Row]]:
        rng = random.Random(self.seed + 11)
        zones, zone_w = zip(*ZONES, strict=True)
        hours, hour_w = zip(*HOURS, strict=True)
        rows: list[Row] = []
        for person_id in self.ids:
            joined = datetime.fromtimestamp(self.start_ts - rng.uniform(0, 60 * DAY), UTC)
            zone, hour = rng.choices(zones, zone_w)[0], rng.choices(hours, hour_w)[0]
            rows.append(
                (person_id, handle_of(person_id), f"Person {person_id}", "", joined, zone, rng.random() >= DIGEST_OFF,
                 hour)
            )  # fmt: skip
        yield from _batched(rows)

    def identity_rows(self) -> Iterator[list[Row]]:
        rng = random.Random(self.seed + 12)
        rows: list[Row] = [
            (pid, pid, PLATFORM, str(pid), chat_of(pid), handle_of(pid), rng.random() < UNREACHABLE, self.now)
            for pid in self.ids
        ]
        yield from _batched(rows)

    def tables(self) -> list[tuple[str, tuple[str, ...], Iterator[list[Row]]]]:
        return [
            ("people", PEOPLE_COLUMNS, self.people_rows()),
            ("identities", IDENTITY_COLUMNS, self.identity_rows()),
            ("follows", FOLLOW_COLUMNS, self.follow_rows()),
            ("posts", POST_COLUMNS, self.post_rows()),
        ]


@dataclass(frozen=True, slots=True)
class Built:
    url: str
    counts: dict[str, int]


def postgres_urls(server: str, shape: Shape) -> tuple[str, str]:
    default = (shape.people, shape.follows, shape.posts) == (100_000, 1_000_000, 1_000_000)
    name = PG_DATABASE if default else f"{PG_DATABASE}_{shape.people}_{shape.follows}_{shape.posts}"
    return server, make_url(server).set(database=name).render_as_string(hide_password=False)


async def prepare(db: str, shape: Shape, out: Path, pg_server: str, rebuild: bool, image_path: str, say: Say) -> Built:
    """Build the network unless a complete one of this shape is cached, then move it to the present."""
    network: DigestNetwork | None = None

    def draw() -> DigestNetwork:
        started = time.perf_counter()
        drawn = DigestNetwork(shape, datetime.now(UTC).replace(microsecond=0), image_path, SEED)
        say(f"  drew the network in {time.perf_counter() - started:.1f} s")
        return drawn

    if db == "sqlite":
        path = out / f"digest-p{shape.people}-f{shape.follows}-n{shape.posts}.db"
        url = f"sqlite+aiosqlite:///{path}"
        if rebuild or not path.exists() or not await load.is_built(url, shape, SEED):
            started = time.perf_counter()
            say(f"building {path} ...")
            network = draw()
            await load.build_sqlite(path, network, say)
            say(f"  built in {time.perf_counter() - started:.1f} s")
    else:
        server, url = postgres_urls(pg_server, shape)
        name = make_url(url).database or PG_DATABASE
        if rebuild or not await load.pg_database_exists(server, name) or not await load.is_built(url, shape, SEED):
            started = time.perf_counter()
            say(f"building PostgreSQL database {name} ...")
            network = draw()
            await load.recreate_pg_database(server, name)
            await load.build_postgres(url, network, say)
            say(f"  built in {time.perf_counter() - started:.1f} s")
    engine = create_engine(url)
    try:
        # A network cached under an older schema gets the app's newer migrations (indexes), as a deployment
        # would; the command benchmark gets them from bootstrap().
        await upgrade(engine)
        await load.catch_up(engine, say)
        counts = await load.counts(engine)
    finally:
        await engine.dispose()
    return Built(url, counts)


async def clear_outbox(engine: AsyncEngine) -> None:
    """Every run composes from nothing: the previous run's digests would make this one skip everyone."""
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text("TRUNCATE deliveries"))
        else:
            await conn.execute(text("DELETE FROM deliveries"))
