"""`python -m bench.digest`: the digest benchmarks (see bench/DIGEST.md).

(a) Compose the digests of everyone in a synthetic network (100,000 people, 1,000,000 follows and
1,000,000 posts of the last two days by default) with `core.feed.digest.compose_pass`, on SQLite and
on PostgreSQL: total seconds and the cost per person, beside its floor (the same composition queries
alone, through sqlite3 or asyncpg on the same file) and the ratio of the two.
(b) Deliver some of those digests (10,000 by default) through a real `core.outbox.Outbox` to a fake
platform that enforces Telegram's limits and answers 429 beyond them: the pace held against the
configured rate, and the count of 429s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path

from sqlalchemy.engine import make_url

from bench import digest_compose, digest_delivery, digest_network
from bench.args import count, non_negative, positive, positive_int
from bench.cli import DEFAULT_PG, shared_image, warm_file
from core.config import Settings

OUT = Path(__file__).parent / "out"


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.digest", description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="sqlite")
    parser.add_argument("--people", type=positive_int, default=100_000)
    parser.add_argument("--follows", type=count, default=1_000_000)
    parser.add_argument("--posts", type=count, default=1_000_000, help="spread over the last 48 hours")
    parser.add_argument("--deliveries", type=count, default=10_000, help="digests to deliver in part (b); 0 skips it")
    parser.add_argument("--rate", type=positive, default=25.0, help="the configured messages per second")
    parser.add_argument(
        "--platform-limit",
        type=positive_int,
        default=30,
        help="messages the fake platform accepts in any second (Telegram: 30)",
    )
    parser.add_argument(
        "--latency", type=non_negative, default=0.005, help="the fake platform's network time, each way"
    )
    parser.add_argument(
        "--in-flight", type=positive_int, default=8, help="sends waiting for an answer at once (Telegram: 8)"
    )
    parser.add_argument(
        "--images",
        type=positive_int,
        default=None,
        help="distinct image files for the delivered posts (default: one per post)",
    )
    parser.add_argument("--image-size", type=positive_int, default=512, help="side of the posts' square PNG images")
    parser.add_argument("--rebuild", action="store_true", help="build the network again even if cached")
    parser.add_argument("--out", type=Path, default=OUT, help="cache and media folder (git-ignored)")
    return parser.parse_args(argv)


def say(line: str) -> None:
    print(line, flush=True)


def settings_for(url: str, out: Path) -> Settings:
    return Settings(_env_file=None, database_url=url, media_dir=out / "digest-media", image_backend="local")


async def bench_one(db: str, args: argparse.Namespace, image_path: str) -> None:
    shape = digest_network.digest_shape(args.people, args.follows, args.posts)
    server = os.environ.get("BENCH_POSTGRES_URL", DEFAULT_PG)
    built = await digest_network.prepare(db, shape, args.out, server, args.rebuild, image_path, say)
    name = "SQLite" if db == "sqlite" else "PostgreSQL"
    counts = built.counts
    say(
        f"(a) {name}: composing digests for {counts['people']:,} people, {counts['follows']:,} follows, "
        f"{counts['posts']:,} posts over 48 h"
    )
    settings = settings_for(built.url, args.out)
    if db == "sqlite":  # in the OS page cache, as a running server's file is (bench.cli.warm_file)
        await asyncio.to_thread(warm_file, Path(make_url(built.url).database or ""))
    composed = await digest_compose.compose(built.url, settings)
    digest_compose.report(composed, args.rate, say)
    if args.deliveries > 0:
        say(f"(b) {name}: delivering {args.deliveries:,} digests at {args.rate:g} messages per second")
        delivered = await digest_delivery.deliver(built.url, settings, args, say)
        digest_delivery.report(delivered, args.rate, say)


async def run(args: argparse.Namespace) -> None:
    args.out.mkdir(parents=True, exist_ok=True)
    image_path = await shared_image(args.out / "digest-media")
    for db in ("sqlite", "postgres") if args.db == "both" else (args.db,):
        await bench_one(db, args, image_path)


def main(argv: list[str] | None = None) -> int:
    asyncio.run(run(parse(argv)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
