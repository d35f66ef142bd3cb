"""`python -m bench`: build (or reuse) the synthetic network, then time the command layer on it."""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url

from bench import load
from bench.args import count, positive, positive_int
from bench.commands import Timing, image_timing, measure, presses_apart
from bench.floor import Floor, open_driver
from bench.machine import CpuWatch, describe_load, is_quiet
from bench.network import Network, Shape
from bench.report import TARGETS, pragmas, table
from core.app import Core, bootstrap
from core.config import Settings
from core.db import SQLITE_PRAGMAS
from core.gen.backend import ImageRequest
from core.gen.local import LocalBackend
from core.gen.media import MediaStore

DEFAULT_PG = "postgresql+asyncpg://root@127.0.0.1:5432/test"
PG_DATABASE = "bench_network"  # our own database on that server, kept between runs
SEED = 2026
SYNCHRONOUS = {"0": "OFF", "1": "NORMAL", "2": "FULL", "3": "EXTRA"}


@dataclass(slots=True)
class Result:
    db: str
    timings: list[Timing]


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="sqlite")
    parser.add_argument("--scale", type=positive, default=1.0, help="1.0 = 10k people, 1M posts (0.01 for a smoke run)")
    parser.add_argument("--iterations", type=positive_int, default=1000, help="measured calls per command")
    parser.add_argument("--warmup", type=count, default=None, help="unmeasured calls first (default: a tenth)")
    parser.add_argument("--images", type=count, default=10, help="offline images to time (0 to skip)")
    parser.add_argument(
        "--checkpoints",
        choices=("background", "commit"),
        default="background",
        help="SQLite: the app's background checkpoint (default), or the old way, inside the commit past 1,000 pages",
    )
    parser.add_argument("--rebuild", action="store_true", help="build the network again even if cached")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "out", help="cache and media folder")
    return parser.parse_args(argv)


def say(line: str) -> None:
    print(line, flush=True)


def postgres_url(scale: float) -> tuple[str, str]:
    """(server URL to administer from, URL of the benchmark's own database for this scale)."""
    server = os.environ.get("BENCH_POSTGRES_URL", DEFAULT_PG)
    name = PG_DATABASE if scale == 1.0 else f"{PG_DATABASE}_{str(scale).replace('.', '_')}"
    return server, make_url(server).set(database=name).render_as_string(hide_password=False)


async def shared_image(out: Path) -> str:
    """Every synthetic post points at this one file; it is made by the offline generator like any post."""
    image = await LocalBackend().generate(ImageRequest("a misty forest at dawn", 1, author="bench"))
    return await MediaStore(out / "media").save(image.data, image.extension)


class Builder:
    """Draws the network once per run, only if some database needs building, so both databases match."""

    def __init__(self, shape: Shape, image_path: str) -> None:
        self.shape, self.image_path = shape, image_path
        self._network: Network | None = None

    def network(self) -> Network:
        if self._network is None:
            started = time.perf_counter()
            self._network = Network(self.shape, datetime.now(UTC).replace(microsecond=0), self.image_path, SEED)
            say(f"  drew the network in {time.perf_counter() - started:.1f} s")
        return self._network


async def prepare(db: str, args: argparse.Namespace, builder: Builder) -> str:
    """The database URL, built first when missing, stale in shape, or --rebuild."""
    if db == "sqlite":
        path = args.out / f"network-x{args.scale:g}.db"
        url = f"sqlite+aiosqlite:///{path}"
        fresh = not args.rebuild and path.exists() and await load.is_built(url, builder.shape, SEED)
        if not fresh:
            started = time.perf_counter()
            say(f"building {path} ...")
            await load.build_sqlite(path, builder.network(), say)
            say(f"  built in {time.perf_counter() - started:.1f} s")
        return url
    server, url = postgres_url(args.scale)
    name = make_url(url).database or PG_DATABASE
    exists = await load.pg_database_exists(server, name)
    if args.rebuild or not exists or not await load.is_built(url, builder.shape, SEED):
        started = time.perf_counter()
        say(f"building PostgreSQL database {name} ...")
        await load.recreate_pg_database(server, name)
        await load.build_postgres(url, builder.network(), say)
        say(f"  built in {time.perf_counter() - started:.1f} s")
    return url


def warm_file(path: Path) -> None:
    """Read the database file once, so that its pages are in the OS page cache, as a server's are after it
    has run a while. These machines drop the page cache now and then, and a cold file put reads from disk into
    the tails (a /profile p99 of 8.8 ms instead of 2.3 right after the cache was dropped)."""
    with path.open("rb") as file:
        while file.read(1 << 20):
            pass


async def live_pragmas(core: Core) -> dict[str, str]:
    values = {}
    async with core.engine.connect() as conn:
        for pragma in SQLITE_PRAGMAS:
            name = pragma.removeprefix("PRAGMA ").split("=", 1)[0].strip()
            value = str(await conn.scalar(text(f"PRAGMA {name}")))
            values[name] = SYNCHRONOUS.get(value, value) if name == "synchronous" else value
    return values


async def _checkpoints(core: Core, how: str) -> None:
    """Run the app's background checkpoint, as `Core.start()` would; or, to compare, SQLite's old default."""
    if how == "background":
        core.checkpointer.start()
        return

    def old_default(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA wal_autocheckpoint=1000")

    event.listen(core.engine.sync_engine, "connect", old_default)
    await core.engine.dispose()  # the pool's connections are made again, with the listener


async def bench_one(db: str, args: argparse.Namespace, builder: Builder) -> Result:
    url = await prepare(db, args, builder)
    if db == "sqlite":
        await asyncio.to_thread(warm_file, Path(make_url(url).database or ""))
    settings = Settings(
        _env_file=None,
        database_url=url,
        media_dir=args.out / "media",
        image_backend="local",
        rate_limit_burst=10**9,  # the benchmark measures commands, not the per-person rate limit
    )
    core = await bootstrap(settings)
    presses_apart(core)
    try:
        await load.catch_up(core.engine, say)
        await _checkpoints(core, args.checkpoints)
        warmup = args.warmup if args.warmup is not None else max(5, args.iterations // 10)
        driver = await open_driver(url)
        try:
            watch = CpuWatch.start()
            timings = await measure(core, args.iterations, warmup, Floor(driver))
            used = watch.stop()
        finally:
            await driver.close()
            await core.checkpointer.stop()
        rows = await load.counts(core.engine)
        title = (
            f"{'SQLite' if db == 'sqlite' else 'PostgreSQL'}: {rows['people']:,} people, {rows['follows']:,} follows, "
            f"{rows['posts']:,} posts, {rows['likes']:,} likes; {args.iterations} calls each after {warmup} warm-up"
        )
        say(table(title, timings, target=TARGETS[db], quiet=is_quiet(used)))
        say(describe_load(used))
        say("  raw = the minimal SQL of the same calls through the driver (bench/floor.py); p99 x = p99 / raw p99")
        if db == "sqlite":
            say(pragmas(await live_pragmas(core)))
    finally:
        await core.aclose()
    return Result(db, timings)


async def run(args: argparse.Namespace) -> list[Result]:
    args.out.mkdir(parents=True, exist_ok=True)
    builder = Builder(Shape.at(args.scale), await shared_image(args.out))
    results = []
    for db in ("sqlite", "postgres") if args.db == "both" else (args.db,):
        results.append(await bench_one(db, args, builder))
    if args.images:
        timing = image_timing(args.images)
        say(table("Offline generator (core.gen.local.LocalBackend), one image at a time", [timing]))
        results.append(Result("images", [timing]))
    return results


def main(argv: list[str] | None = None) -> int:
    asyncio.run(run(parse(argv)))
    return 0
