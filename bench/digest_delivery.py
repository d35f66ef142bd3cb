"""Part (b): deliver digests composed by part (a) through a real `core.outbox.Outbox` with the real
`DigestRenderer` to `FakeTelegram`, and measure the pace against the configured rate and the 429s."""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiolimiter import AsyncLimiter
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bench.digest_images import Pictures, assign
from bench.digest_platform import FakeTelegram
from bench.machine import CpuWatch, describe_load
from bench.network import PLATFORM
from core.config import Settings
from core.db import create_engine, create_sessionmaker
from core.feed.digest_render import DigestRenderer
from core.gen.media import MediaStore
from core.messenger import MessageRef
from core.models import Delivery
from core.outbox import Outbox, Outgoing

PACE_TARGET = 0.95
OPEN = 0.001  # a limiter wait shorter than this: the sender came after its slot
Say = Callable[[str], None]


@dataclass
class TimedRenderer:
    """The real renderer, timed; remembers when each chat's picture was ready."""

    inner: DigestRenderer
    seconds: list[float] = field(default_factory=list)
    ready_at: dict[str, float] = field(default_factory=dict)

    @property
    def render_ahead(self) -> bool:  # whatever the real renderer tells the outbox
        return bool(getattr(self.inner, "render_ahead", False))

    async def render(self, session: AsyncSession, delivery: Delivery, payload: dict[str, Any]) -> Outgoing | None:
        started = time.perf_counter()
        try:
            return await self.inner.render(session, delivery, payload)
        finally:
            self.ready_at[delivery.chat_id] = time.perf_counter()
            self.seconds.append(self.ready_at[delivery.chat_id] - started)

    async def sent(self, session: AsyncSession, delivery: Delivery, payload: dict[str, Any], ref: MessageRef) -> None:
        await self.inner.sent(session, delivery, payload, ref)


class TimedLimiter(AsyncLimiter):
    """The outbox's limiter, recording when each send asked for it and how long it waited."""

    def __init__(self, max_rate: float, time_period: float) -> None:
        super().__init__(max_rate, time_period)
        self.calls: list[tuple[float, float]] = []  # (asked at, waited)

    async def acquire(self, amount: float = 1) -> None:
        started = time.perf_counter()
        await super().acquire(amount)
        self.calls.append((started, time.perf_counter() - started))


@dataclass
class Delivered:
    pictures: Pictures
    queued: int
    platform: FakeTelegram
    started: float
    renderer: TimedRenderer
    limiter: TimedLimiter
    statuses: dict[str, int]
    thumbnails: int
    collages: int
    load: str

    @property
    def pace(self) -> float:
        """Messages per second from the first send to the last."""
        sent = self.platform.sent
        return (len(sent) - 1) / (sent[-1] - sent[0]) if len(sent) > 1 else 0.0

    @property
    def overall(self) -> float:
        """Messages per second from the outbox's start to the last send."""
        sent = self.platform.sent
        return len(sent) / (sent[-1] - self.started) if sent else 0.0

    def late(self) -> tuple[int, int]:
        """(sends that reached the limiter after their slot, those of them whose own picture had only
        just been rendered, i.e. the render was what held them up). The first send is never late."""
        late = by_render = 0
        for (asked, waited), chat in zip(self.limiter.calls[1:], self.platform.attempts[1:], strict=False):
            if waited < OPEN:
                late += 1
                by_render += asked - self.renderer.ready_at.get(chat, 0.0) < 0.002
        return late, by_render


async def keep_first(engine: AsyncEngine, count: int) -> int:
    """Leave the `count` first pending digests pending; set the rest aside (status "held")."""
    async with engine.begin() as conn:
        ids = (
            await conn.scalars(
                select(Delivery.id).where(Delivery.status == "pending").order_by(Delivery.id).limit(count)
            )
        ).all()
        if ids:
            await conn.execute(
                update(Delivery).where(Delivery.status == "pending", Delivery.id > ids[-1]).values(status="held")
            )
    return len(ids)


def _timed_limiter(outbox: Outbox, platform: str) -> TimedLimiter:
    # The bench reaches into the outbox's sender to swap in a timed limiter of the same shape.
    sender = outbox._senders[platform]
    timed = TimedLimiter(sender.limiter.max_rate, sender.limiter.time_period)
    sender.limiter = timed
    return timed


async def _until_done(outbox: Outbox, platform: FakeTelegram, queued: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        if len(platform.sent) >= queued or await outbox.idle():
            return


async def deliver(url: str, settings: Settings, args: argparse.Namespace, say: Say) -> Delivered:
    engine = create_engine(url)
    media = MediaStore(settings.media_dir)
    try:
        queued = await keep_first(engine, args.deliveries)
        pictures = await assign(engine, media, args.images, args.image_size)
        say(
            f"  pictures: {pictures.posts:,} distinct posts in {pictures.sets:,} distinct sets, on {pictures.images:,} "
            f"{args.image_size}x{args.image_size} PNG files "
            f"({pictures.made:,} generated now); no thumbnail or collage made yet"
        )
        outbox = Outbox(create_sessionmaker(engine))
        renderer = TimedRenderer(DigestRenderer(media))
        outbox.add_renderer("digest", renderer)
        platform = FakeTelegram(
            PLATFORM, args.rate, args.latency, overall_per_second=args.platform_limit, max_in_flight=args.in_flight
        )
        outbox.register(platform)
        limiter = _timed_limiter(outbox, PLATFORM)
        watch, started = CpuWatch.start(), time.monotonic()
        await outbox.start()
        try:
            await _until_done(outbox, platform, queued, queued / args.rate * 3 + 60)
        finally:
            await outbox.stop()
        load = describe_load(watch.stop())
        async with engine.connect() as conn:
            rows = await conn.execute(select(Delivery.status, func.count()).group_by(Delivery.status))
            statuses = {status: count for status, count in rows}
    finally:
        await engine.dispose()
    thumbs = sum(1 for _ in (media.root / "thumbs").rglob("*.jpg"))
    collages = sum(1 for _ in (media.root / "collages").rglob("*.jpg"))
    return Delivered(pictures, queued, platform, started, renderer, limiter, statuses, thumbs, collages, load)


def _ms(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def report(done: Delivered, rate: float, say: Say) -> None:
    fake, sent = done.platform, len(done.platform.sent)
    share = done.pace / rate
    say(
        f"  sent {sent:,} of {done.queued:,}: {done.pace:.2f} messages/s from the first send to the last = "
        f"{share:.1%} of the configured {rate:g}/s (target >= {PACE_TARGET:.0%}: "
        f"{'ok' if share >= PACE_TARGET else 'UNDER'}); {done.overall:.2f}/s counting from the outbox's start"
    )
    allowed = max(sent, 10_000) / 10_000
    say(
        f"  429s: {fake.too_many} (target <= 1 per 10,000 sends: {'ok' if fake.too_many <= allowed else 'OVER'}); "
        f"busiest sliding second: {fake.busiest_second()} messages (limit {fake.overall_per_second}); outbox rows: "
        + ", ".join(f"{count:,} {status}" for status, count in sorted(done.statuses.items()))
    )
    interval, renders = 1 / rate, done.renderer.seconds
    slow = sum(1 for s in renders if s > interval)
    say(
        f"  rendering: {done.collages:,} collages and {done.thumbnails:,} thumbnails made; per digest p50 "
        f"{_ms(renders, 50):.1f} ms, p99 {_ms(renders, 99):.1f} ms, max {_ms(renders, 100):.1f} ms; "
        f"{slow:,} renders took longer than a send interval ({1000 * interval:.0f} ms)"
    )
    late, by_render = done.late()
    limited = share < PACE_TARGET and by_render * 2 >= late
    say(
        f"  late at the limiter: {late:,} of {len(done.limiter.calls):,} sends came after their slot, {by_render:,} "
        f"of them right after their own picture was rendered; rendering limits the pace: {'yes' if limited else 'no'}"
    )
    say(f"  {done.load}")
