"""`python -m bench.discord_ack`: how fast the Discord adapter acknowledges interactions under load.

N slash commands (/like, /follow, /profile, /feed, /imagine in turn, each from a different person of
a synthetic network) are sent at once as INTERACTION_CREATE events over the fake Discord's gateway
to the real adapter (bots/discord, discord.py) on a fresh database. Each figure is the time from the
fake sending the event to the fake receiving the interaction's callback request (type 4, the answer,
or 5, a deferral). The floor, measured in the same run the same way, is a burst of N /ping commands
that discord.py answers by itself: the gateway, discord.py's parsing and HTTP, and the fake, without
the adapter or the core. Discord drops an interaction not acknowledged within 3 s; the target is a
p99 under 300 ms on this machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import discord
import discord.gateway
import discord.http
from discord import app_commands
from pydantic import SecretStr
from sqlalchemy.engine import make_url

from bench import load
from bench.args import non_negative, positive, positive_int
from bench.cli import shared_image
from bench.commands import Timing
from bench.gen_backend import FakeRemoteBackend
from bench.machine import CpuWatch, Load, describe_load
from bench.network import Network, Row, Shape, _batched, handle_of
from bench.report import table
from bots.discord.app import DiscordBot, Tuning, point_at, serve
from bots.discord.messenger import PLATFORM, dm_chat
from core.app import OOPS, Core, bootstrap
from core.config import Settings
from tests.fakes.discord_api import Call, FakeDiscord
from tests.fakes.discord_events import User
from tests.fakes.discord_interactions import Interaction

DEFAULT_PG = "postgresql+asyncpg://root@127.0.0.1:5432/test"
# Our own database on that server, made for the run and dropped after it (the pid: runs side by side never meet).
PG_DATABASE = f"bench_discord_ack_{os.getpid()}"
TARGET_MS = 300.0
BUSY = 0.1  # other processes' share of the CPUs above which the verdict is withheld (as describe_load warns)
COMMANDS = ("like", "follow", "profile", "feed", "imagine")
CALLBACK = "POST /interactions/{interaction_id}/{interaction_token}/callback"
USER_BASE = 10**17  # Discord user id = this + person id: snowflake-sized, and one-to-one
SEED = 909
WARMUP = 2  # unmeasured rounds of every command first (connections, statement caches)


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.discord_ack", description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("BENCH_POSTGRES_URL", DEFAULT_PG),
        help="PostgreSQL server; the run makes a database bench_discord_ack_<pid> on it and drops it after",
    )
    parser.add_argument("--count", type=positive_int, default=100, help="slash commands sent at once (default 100)")
    parser.add_argument(
        "--scale", type=positive, default=0.05, help="network size, as in python -m bench (0.05: 500 people)"
    )
    parser.add_argument(
        "--direct-seconds",
        type=non_negative,
        default=Tuning().direct_seconds,
        help="the adapter answers directly when the core is this quick, else defers (default: the adapter's own)",
    )
    return parser.parse_args(argv)


def say(line: str = "") -> None:
    print(line, flush=True)


def user_of(person_id: int) -> User:
    return User(str(USER_BASE + person_id), handle_of(person_id))


class AckNetwork(Network):
    """bench/network.py's graph, its people known on Discord (so that the fake's users are people in it)."""

    def identity_rows(self) -> Iterator[list[Row]]:
        rows: list[Row] = []
        for pid in self.ids:
            user_id = USER_BASE + pid
            rows.append((pid, pid, PLATFORM, str(user_id), dm_chat(user_id), handle_of(pid), False, self.now))
        yield from _batched(rows)


@dataclass(frozen=True, slots=True)
class Ask:
    command: str
    user: User
    options: dict[str, Any]


def plan(network: Network, count: int, rounds: int) -> list[list[Ask]]:
    """`rounds` bursts of `count` commands; within a burst each person asks once (while people last)."""
    rng = random.Random(SEED)
    following: dict[int, set[int]] = {}
    for follower, followee in network.follows:
        following.setdefault(follower, set()).add(followee)
    askers = [pid for pid in network.ids if pid in following]  # an empty feed is a cheaper answer
    rng.shuffle(askers)
    public = [i + 1 for i, private in enumerate(network.private) if not private]
    people = list(network.ids)
    bursts = []
    for burst in range(rounds):
        asks = []
        for index in range(count):
            pid = askers[(burst * count + index) % len(askers)]
            command = COMMANDS[index % len(COMMANDS)]
            asks.append(Ask(command, user_of(pid), _options(command, pid, following[pid], people, public, rng)))
        bursts.append(asks)
    return bursts


def _options(
    command: str, pid: int, follows: set[int], people: list[int], public: list[int], rng: random.Random
) -> dict[str, Any]:
    if command == "like":
        return {"post": f"#{rng.choice(public)}"}
    if command == "follow":
        strangers = [p for p in rng.sample(people, min(len(people), 50)) if p != pid and p not in follows]
        return {"handle": handle_of(strangers[0] if strangers else pid % len(people) + 1)}
    if command == "profile":
        return {"handle": handle_of(rng.choice(people))}
    if command == "imagine":
        return {"prompt": f"a lighthouse in the rain number {pid}"}
    return {}


class BenchBot(DiscordBot):
    """The real adapter, plus /ping, which discord.py answers by itself: the floor."""

    async def sync_commands(self) -> None:
        guild_id = self.settings.discord_guild_id
        guild = discord.Object(guild_id) if guild_id else None
        self.tree.add_command(app_commands.Command(name="ping", description="pong", callback=_pong), guild=guild)
        await super().sync_commands()


async def _pong(interaction: discord.Interaction) -> None:
    await interaction.response.send_message("pong")


async def fresh_database(args: argparse.Namespace, scratch: Path, network: Network) -> str:
    if args.db == "sqlite":
        path = scratch / "ack.db"
        await load.build_sqlite(path, network, lambda line: None)
        return f"sqlite+aiosqlite:///{path}"
    await load.recreate_pg_database(args.pg_url, PG_DATABASE)
    url = make_url(args.pg_url).set(database=PG_DATABASE).render_as_string(hide_password=False)
    await load.build_postgres(url, network, lambda line: None)
    return url


async def start_bot(
    core: Core, settings: Settings, api: FakeDiscord, direct_seconds: float
) -> tuple[asyncio.Event, asyncio.Task[None]]:
    bot = BenchBot(core, settings, Tuning(direct_seconds=direct_seconds, guild_ready_timeout=0.05))
    stop = asyncio.Event()
    task = asyncio.create_task(serve(bot, api.token, stop))
    async with asyncio.timeout(20):
        while not bot.is_ready():
            if task.done():
                await task
            await asyncio.sleep(0.02)
    return stop, task


@dataclass(slots=True)
class Burst:
    pushed: list[tuple[str, Interaction]]  # (label, interaction)

    def timings(self, api: FakeDiscord) -> dict[str, Timing]:
        """Milliseconds from the event's send (the interaction's creation, just before) to the callback's arrival."""
        arrived = {c.params["interaction_id"]: c.at for c in api.calls_of(CALLBACK)}
        found: dict[str, Timing] = {}
        for label, pushed in self.pushed:
            ms = (arrived[pushed.id] - pushed.created) * 1000
            found.setdefault(label, Timing(label, [])).samples_ms.append(ms)
        return found


async def burst(api: FakeDiscord, asks: list[Ask]) -> Burst:
    """All at once over the gateway, then every callback awaited."""
    sent = await asyncio.gather(*(api.slash(a.command, a.user, **a.options) for a in asks))
    pushed = [(f"/{a.command}", p) for a, p in zip(asks, sent, strict=True)]
    for _, interaction in pushed:
        await api.wait_for(CALLBACK, _of(interaction.id), seconds=30)
    return Burst(pushed)


def _of(interaction_id: str) -> Callable[[Call], bool]:
    return lambda call: call.params["interaction_id"] == interaction_id


@dataclass(frozen=True, slots=True)
class Outcome:
    kinds: dict[int, int]  # callback type -> how many
    late: int  # refused: acknowledged after Discord's 3 s
    failed: int  # answered (at once or after deferring) with the core's apology


def check(done: Burst) -> Outcome:
    """How the interactions ended: an ack time only means something for a command that worked."""
    kinds: dict[int, int] = {}
    late = failed = 0
    for _, pushed in done.pushed:
        if pushed.response_type is None:
            late += 1  # Discord would have shown "The application did not respond"
            continue
        kinds[pushed.response_type] = kinds.get(pushed.response_type, 0) + 1
        shown = [pushed.response or {}, pushed.original or {}, *pushed.followups]
        failed += any(OOPS in str(message.get("content")) for message in shown)
    return Outcome(kinds, late, failed)


def verdict(p99: float, machine: Load | None) -> str:
    if machine is None or machine.others >= BUSY:
        return f"verdict withheld: the machine was busy (p99 {p99:.0f} ms against the {TARGET_MS:g} ms target)"
    return f"target p99 under {TARGET_MS:g} ms: " + ("ok" if p99 < TARGET_MS else f"OVER ({p99:.0f} ms)")


@dataclass(frozen=True, slots=True)
class Result:
    floor: Timing
    every: Timing
    by_command: dict[str, Timing]
    machine: Load | None
    outcome: Outcome

    @property
    def ok(self) -> bool:
        busy = self.machine is None or self.machine.others >= BUSY
        return self.outcome.late == self.outcome.failed == 0 and (busy or self.every.percentile(99) < TARGET_MS)


async def run(args: argparse.Namespace) -> Result:
    shape = Shape.at(args.scale)
    saved = discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    with tempfile.TemporaryDirectory(prefix="bench-ack-") as scratch_dir:
        scratch = Path(scratch_dir)
        image = await shared_image(scratch)
        network = AckNetwork(shape, datetime.now(UTC).replace(microsecond=0), image, SEED)
        started = time.perf_counter()
        url = await fresh_database(args, scratch, network)
        say(
            f"{'SQLite' if args.db == 'sqlite' else 'PostgreSQL'}: built {shape.people:,} people, "
            f"{len(network.follows):,} follows, {shape.posts:,} posts, {sum(network.like_counts):,} likes "
            f"in {time.perf_counter() - started:.1f} s"
        )
        try:
            async with FakeDiscord() as api:
                return await measure(args, api, url, scratch, network)
        finally:
            discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = saved
            if args.db == "postgres":
                await load.drop_pg_database(args.pg_url, PG_DATABASE)


async def measure(args: argparse.Namespace, api: FakeDiscord, url: str, scratch: Path, network: Network) -> Result:
    settings = Settings(
        _env_file=None,
        database_url=url,
        media_dir=scratch / "media",
        image_backend="local",  # no API key, no remote moderation: the backend is the one passed in
        generation_per_person=args.count,
        daily_quota=10 * args.count,
        generation_cooldown_seconds=0,
        discord_bot_token=SecretStr(api.token),
        discord_api_base_url=api.api_base,
        discord_guild_id=int(api.guild_id),
    )
    point_at(api.api_base)
    core = await bootstrap(settings, backend=FakeRemoteBackend(0.5))
    *warm, measured = plan(network, args.count, WARMUP + 1)
    pings = [Ask("ping", user_of(pid), {}) for pid in list(network.ids)[: args.count]]
    try:
        await core.start()
        stop, task = await start_bot(core, settings, api, args.direct_seconds)
        try:
            for asks in warm:
                await burst(api, asks[: len(COMMANDS) * 2])
            await burst(api, pings)
            await asyncio.sleep(0.5)  # the warm-up's image jobs settle
            watch = CpuWatch.start()
            floor = (await burst(api, pings)).timings(api)["/ping"]
            done = await burst(api, measured)
            machine = watch.stop()
            with contextlib.suppress(TimeoutError):  # the images and their progress edits, before the bot stops
                async with asyncio.timeout(30):
                    await core.drain()
        finally:
            stop.set()
            async with asyncio.timeout(15):
                await task
    finally:
        await core.aclose()
    outcome = check(done)
    by_command = done.timings(api)
    result = Result(
        floor, Timing("all", [s for t in by_command.values() for s in t.samples_ms]), by_command, machine, outcome
    )
    report(args, result)
    return result


def report(args: argparse.Namespace, result: Result) -> None:
    floor, every, outcome = result.floor, result.every, result.outcome
    kinds = outcome.kinds
    rows = [Timing("floor: /ping (discord.py alone)", floor.samples_ms), Timing("all commands", every.samples_ms)]
    rows += [result.by_command[f"/{c}"] for c in COMMANDS if f"/{c}" in result.by_command]
    say(table(f"{args.count} slash commands sent at once; ms from gateway event to callback request", rows))
    say(
        f"ratio to the floor: p50 {every.percentile(50) / floor.percentile(50):.1f}x, "
        f"p99 {every.percentile(99) / floor.percentile(99):.1f}x"
    )
    say(
        f"callbacks: {kinds.get(4, 0)} answered (type 4), {kinds.get(5, 0)} deferred (type 5) after "
        f"{args.direct_seconds:g} s without the core's answer, {outcome.late} too late for Discord's 3 s; "
        f"{outcome.failed} ended in the core's apology (see the log)"
    )
    say(describe_load(result.machine))
    say(verdict(every.percentile(99), result.machine))


def main(argv: Sequence[str] | None = None) -> int:
    return 0 if asyncio.run(run(parse(argv))).ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
