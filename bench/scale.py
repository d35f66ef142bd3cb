"""`python -m bench.scale`: the scale-out benchmark (bench/SCALE.md).

1. Generation: images per minute with 1, 2 and 4 worker processes (`python -m bots serve --roles
   workers`, each GENERATION_CONCURRENCY=C) on one PostgreSQL database, against a fake OpenAI images
   server that answers after a fixed latency; as a share of the ideal, processes x C / latency.
2. Outbox: 3 sender processes (`serve --roles senders`) against a fake Bot API that answers 429 to a
   send beyond its limit in any second; the combined pace against TELEGRAM_MESSAGES_PER_SECOND.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from bench.args import positive, positive_int
from bench.gen_backend import _chunk, _tiny_png
from core import outbox
from core.db import create_engine, create_sessionmaker
from core.migrate import upgrade
from core.models import GenerationJob, Person, utcnow

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgresql+asyncpg://root@127.0.0.1:5432/test"
TOKEN = "123456:" + "B" * 35
TINY_PNG = _tiny_png()


@dataclass
class FakeServices:
    """OpenAI images (a fixed latency) and the Bot API (getMe, setMyCommands, sendMessage with flood
    control), on one aiohttp server."""

    latency: float
    flood_limit: int
    sends: list[float] = field(default_factory=list)
    refused: int = 0
    images: int = 0
    url: str = ""

    def _image(self, prompt: str) -> str:
        """A tiny PNG, distinct per prompt (as bench/gen_backend.py): the workers' cost, not a picture's."""
        head, tail = TINY_PNG[:33], TINY_PNG[33:]
        return base64.b64encode(head + _chunk(b"tEXt", b"request\0" + prompt.encode()) + tail).decode()

    async def generations(self, request: web.Request) -> web.Response:
        body = await request.json()
        await asyncio.sleep(self.latency)
        self.images += 1
        return web.json_response(
            {"created": int(time.time()), "data": [{"b64_json": self._image(str(body["prompt"]))}]}
        )

    async def bot(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if method == "getMe":
            result: Any = {"id": 1, "is_bot": True, "first_name": "Bench", "username": "bench_bot"}
        elif method == "sendMessage":
            params = await request.json() if request.content_type == "application/json" else dict(await request.post())
            now = time.monotonic()
            if sum(1 for at in self.sends[-self.flood_limit :] if at > now - 1.0) >= self.flood_limit:
                self.refused += 1
                return web.json_response(
                    {
                        "ok": False,
                        "error_code": 429,
                        "description": "Too Many Requests: retry after 1",
                        "parameters": {"retry_after": 1},
                    },
                    status=429,
                )
            self.sends.append(now)
            result = {
                "message_id": len(self.sends),
                "date": int(time.time()),
                "chat": {"id": int(str(params["chat_id"])), "type": "private"},
                "text": params.get("text", ""),
            }
        else:
            result = True
        return web.json_response({"ok": True, "result": result})


@asynccontextmanager
async def services(latency: float, flood_limit: int) -> AsyncIterator[FakeServices]:
    fake = FakeServices(latency, flood_limit)
    app = web.Application()
    app.router.add_post("/v1/images/generations", fake.generations)
    app.router.add_route("*", "/bot{token}/{method}", fake.bot)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    fake.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield fake
    finally:
        await runner.cleanup()


@asynccontextmanager
async def scratch_database(server: str) -> AsyncIterator[str]:
    name = f"bench_scale_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(server).set(database=name).render_as_string(hide_password=False)
    try:
        engine = create_engine(url)
        await upgrade(engine)
        await engine.dispose()
        yield url
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


async def start(roles: str, env: dict[str, str], home: Path) -> asyncio.subprocess.Process:
    await asyncio.to_thread(home.mkdir, parents=True, exist_ok=True)
    full = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "OPENAI_", "DATABASE_"))}
    full |= {"PYTHONPATH": str(ROOT), "MEDIA_DIR": str(home / "media"), "LOG_LEVEL": "WARNING"} | env
    with (home / "log").open("ab") as log:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bots", "serve", "--roles", roles, env=full, cwd=home, stdout=log, stderr=log
        )


async def stop(processes: list[asyncio.subprocess.Process]) -> None:
    for proc in processes:
        if proc.returncode is None:
            proc.terminate()
    await asyncio.gather(*(proc.wait() for proc in processes))


async def generation_run(server: str, workers: int, concurrency: int, latency: float, rounds: int, home: Path) -> float:
    """Images per minute with `workers` processes, measured from the first image to the last."""
    async with scratch_database(server) as url, services(latency, 1000) as fake:
        engine = create_engine(url)
        sessions = create_sessionmaker(engine)
        jobs = workers * concurrency * rounds
        async with sessions() as session:
            people = [Person(handle=f"p{i}", display_name=f"P{i}") for i in range(jobs // 2 + 1)]
            session.add_all(people)
            await session.flush()
            now = utcnow()
            session.add_all(
                GenerationJob(
                    idempotency_key=f"k{n}",
                    person_id=people[n // 2].id,
                    prompt=f"bench {n}",
                    seed=n,
                    aspect="1:1",
                    visibility="public",
                    status="queued",
                    attempts=0,
                    not_before=now,
                    created_at=now,
                )
                for n in range(jobs)
            )
            await session.commit()
        env = {
            "DATABASE_URL": url,
            "IMAGE_BACKEND": "openai",
            "OPENAI_API_KEY": "sk-bench",
            "OPENAI_BASE_URL": f"{fake.url}/v1",
            "OPENAI_MODERATION": "false",
            "GENERATION_CONCURRENCY": str(concurrency),
        }
        procs = [await start("workers", env, home / f"w{workers}-{i}") for i in range(workers)]
        try:
            while True:
                async with sessions() as session:
                    done = await session.scalar(
                        select(func.count()).select_from(GenerationJob).where(GenerationJob.status == "done")
                    )
                    first = await session.scalar(select(func.min(GenerationJob.finished_at)))
                    last = await session.scalar(select(func.max(GenerationJob.finished_at)))
                if done == jobs:
                    break
                await asyncio.sleep(0.2)
        finally:
            await stop(procs)
            await engine.dispose()
        assert first is not None and last is not None
        # From the first finished image to the last: (jobs - the first wave) images in that time.
        span = (last - first).total_seconds()
        return float((jobs - workers * concurrency) / span * 60.0)


async def outbox_run(
    server: str, senders: int, rate: float, limit: int, rows: int, home: Path
) -> tuple[float, int, int]:
    """The combined pace of `senders` sender processes, the 429s, and the rows sent."""
    async with scratch_database(server) as url, services(0.0, limit) as fake:
        engine = create_engine(url)
        sessions = create_sessionmaker(engine)
        env = {
            "DATABASE_URL": url,
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_API_BASE_URL": fake.url,
            "TELEGRAM_MESSAGES_PER_SECOND": str(rate),
        }
        procs = [await start("senders", env, home / f"o{i}") for i in range(senders)]
        try:
            await asyncio.sleep(3.0)  # every process started and competing for the lock
            async with sessions() as session:
                for n in range(rows):
                    await outbox.add(
                        session,
                        key=f"b{n}",
                        platform="telegram",
                        chat_id=str(10_000 + n),
                        kind="text",
                        payload={"text": f"bench {n}"},
                    )
                await session.commit()
            while len(fake.sends) < rows:  # noqa: ASYNC110 (the sends come from other processes)
                await asyncio.sleep(0.2)
        finally:
            await stop(procs)
            await engine.dispose()
        pace = (len(fake.sends) - 1) / (fake.sends[-1] - fake.sends[0])
        return pace, fake.refused, len(fake.sends)


async def run(args: argparse.Namespace) -> None:
    home = Path(args.out)
    ideal_one = args.concurrency / args.latency * 60.0
    print(f"generation: C={args.concurrency} per process, latency {args.latency:g} s, {args.rounds} rounds")
    print("| worker processes | images/min | ideal | share of ideal |")
    print("| --- | --- | --- | --- |")
    for workers in args.workers:
        rate = await generation_run(args.db, workers, args.concurrency, args.latency, args.rounds, home)
        ideal = ideal_one * workers
        print(f"| {workers} | {rate:.0f} | {ideal:.0f} | {rate / ideal:.1%} |", flush=True)
    pace, refused, sent = await outbox_run(args.db, args.senders, args.rate, args.limit, args.rows, home)
    print(f"\noutbox: {args.senders} sender processes, {sent} rows, configured {args.rate:g}/s, limit {args.limit}/s")
    print(f"combined pace {pace:.2f}/s = {pace / args.rate:.1%} of the configured rate; 429s: {refused}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=os.environ.get("BENCH_POSTGRES_URL", DEFAULT_URL), help="a PostgreSQL server")
    parser.add_argument("--workers", type=positive_int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--concurrency", type=positive_int, default=4)
    parser.add_argument("--latency", type=positive, default=2.0)
    parser.add_argument("--rounds", type=positive_int, default=8, help="jobs per worker slot")
    parser.add_argument("--senders", type=positive_int, default=3)
    parser.add_argument("--rate", type=positive, default=25.0)
    parser.add_argument(
        "--limit", type=positive_int, default=30, help="the fake platform's sends per second (Telegram's)"
    )
    parser.add_argument("--rows", type=positive_int, default=500)
    parser.add_argument("--out", default="bench/out/scale")
    asyncio.run(run(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
