"""`python -m bench.idle_penalty`: what the same database call costs right after another one, and after the
event loop has been idle a while.

On these machines a call that runs straight after another costs a fraction of what the same call costs after
the process slept a few milliseconds: the caches it needs were someone else's meanwhile. A command measured in
a tight loop therefore looks cheaper than it is in a bot that waits for its next message, and the generation
pipeline, whose loop idles while the image service works, pays the idle price on every completion
(bench/GENERATION.md). This prints the median of each call, back to back and after each idle period, on one
SQLite file, and the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from sqlalchemy import text

from bench.args import positive_int
from bench.machine import CpuWatch, describe_load
from core.actor import Actor
from core.app import Core, bootstrap
from core.config import Settings
from core.people import known_person

IDLE_MS = (0.0, 1.0, 5.0, 30.0)
WHO = Actor("console", "idle1", "chat-idle1", "idle1", "Idle One")


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.idle_penalty", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--calls", type=positive_int, default=300, help="timed calls per row (after a tenth as many untimed)"
    )
    return parser.parse_args(argv)


def calls(core: Core) -> dict[str, Callable[[], Awaitable[object]]]:
    async def empty_session() -> None:
        async with core.sessions():
            pass

    async def select_one() -> None:
        async with core.sessions() as session:
            await session.execute(text("SELECT 1"))

    async def who() -> None:
        async with core.sessions() as session:
            await known_person(session, WHO)

    return {"session, no statement": empty_session, "session, SELECT 1": select_one, "the person lookup": who}


async def median_ms(call: Callable[[], Awaitable[object]], idle_ms: float, count: int) -> float:
    times = []
    for i in range(count + count // 10):
        if idle_ms:
            await asyncio.sleep(idle_ms / 1000)
        started = time.perf_counter()
        await call()
        if i >= count // 10:
            times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


async def measure(count: int) -> list[tuple[str, list[float]]]:
    with tempfile.TemporaryDirectory(prefix="bench-idle-") as scratch:
        settings = Settings(
            _env_file=None,
            database_url=f"sqlite+aiosqlite:///{Path(scratch) / 'idle.db'}",
            media_dir=Path(scratch) / "media",
            image_backend="local",
        )
        core = await bootstrap(settings)
        try:
            await core.handle(WHO, "/start")
            return [
                (name, [await median_ms(call, idle, count) for idle in IDLE_MS]) for name, call in calls(core).items()
            ]
        finally:
            await core.aclose()


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    watch = CpuWatch.start()
    rows = asyncio.run(measure(args.calls))
    load = watch.stop()
    head = " ".join(f"{f'after {idle:g} ms idle':>18}" for idle in IDLE_MS[1:])
    print(f"{'median ms per call (SQLite)':<28} {'back to back':>12} {head}")
    for name, medians in rows:
        cells = " ".join(f"{m:>9.3f} ({m / medians[0]:4.1f}x)" for m in medians[1:])
        print(f"{name:<28} {medians[0]:>12.3f} {cells}")
    print()
    print(describe_load(load))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
