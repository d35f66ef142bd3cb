"""`python -m bench.profile`: where one command's time goes, under cProfile, on the benchmark's network.

The command runs through the real command layer (`Core.handle` / `Core.press`) as one person of the
network, again and again after a warm-up, with only those calls profiled; then the statistics print,
and with `--save` they are also written for a viewer (`snakeviz`, `pstats`). The numbers cProfile
adds are large, so compare shares of the total (and the call counts), not milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import time
from pathlib import Path

from sqlalchemy import func, select

from bench import cli, load
from bench.args import positive, positive_int
from bench.commands import presses_apart
from bench.network import PLATFORM, Shape, chat_of
from core.actor import Actor
from core.app import Core, bootstrap
from core.config import Settings
from core.models import Follow, Identity, Person, Post

EXAMPLES = "/feed, 'feed before {post}', '/profile {handle}', /top, 'like {post}', 'follow {handle}'"


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.split("\n\n")[0])
    parser.add_argument("call", help=f"a typed line or a button's action: {EXAMPLES}")
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--scale", type=positive, default=0.1, help="of the network of `python -m bench`")
    parser.add_argument(
        "--calls", type=positive_int, default=500, help="profiled calls (after a tenth as many unprofiled)"
    )
    parser.add_argument("--sort", default="tottime", help="pstats order: tottime, cumtime, ncalls...")
    parser.add_argument("--limit", default="30", help="lines to print, or a pattern such as aiosqlite")
    parser.add_argument("--save", type=Path, default=None, help="write the statistics to this file")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "out", help="cache and media folder")
    parser.add_argument("--rebuild", action="store_true", help="build the network again even if cached")
    return parser.parse_args(argv)


async def subject(core: Core) -> tuple[Actor, dict[str, str]]:
    """A person who follows someone, and the values the call's {post} and {handle} stand for."""
    async with core.sessions() as session:
        viewer = await session.scalar(select(Follow.follower_id).order_by(Follow.follower_id).limit(1))
        user_id = await session.scalar(select(Identity.platform_user_id).where(Identity.person_id == viewer))
        other = await session.scalar(select(Person.handle).where(Person.id != viewer).order_by(Person.id.desc()))
        post = await session.scalar(select(func.max(Post.id)))
    assert user_id is not None and other is not None and post is not None, "an empty network"
    return Actor(PLATFORM, user_id, chat_id=chat_of(viewer or 0)), {"post": str(post), "handle": other}


async def profile(args: argparse.Namespace) -> pstats.Stats:
    args.out.mkdir(parents=True, exist_ok=True)
    builder = cli.Builder(Shape.at(args.scale), await cli.shared_image(args.out))
    url = await cli.prepare(args.db, args, builder)
    settings = Settings(
        _env_file=None, database_url=url, media_dir=args.out / "media", image_backend="local", rate_limit_burst=10**9
    )
    core = await bootstrap(settings)
    presses_apart(core)  # a like pressed again and again is not a double tap
    try:
        await load.catch_up(core.engine, cli.say)
        actor, values = await subject(core)
        line = args.call.format(**values)

        async def once() -> None:
            replies = await (core.handle(actor, line) if line.startswith("/") else core.press(actor, line))
            if any(reply.error for reply in replies):
                raise SystemExit(f"{line!r} answered: {' / '.join(reply.text for reply in replies)}")

        for _ in range(max(1, args.calls // 10)):
            await once()
        profiler = cProfile.Profile()
        started = time.perf_counter()
        profiler.enable()
        for _ in range(args.calls):
            await once()
        profiler.disable()
        each = 1000 * (time.perf_counter() - started) / args.calls
        cli.say(f"{line!r}: {args.calls} calls, {each:.2f} ms each under cProfile")
    finally:
        await core.aclose()
    stats = pstats.Stats(profiler)
    if args.save is not None:
        stats.dump_stats(args.save)
    return stats


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    stats = asyncio.run(profile(args))
    limit: int | str = int(args.limit) if args.limit.isdigit() else args.limit
    stats.sort_stats(args.sort).print_stats(limit)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
