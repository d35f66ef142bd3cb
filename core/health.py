"""The deployment's health: a heartbeat row per process, and what `python -m bots status` (and an
admin's /stats) show: the processes, who leads the scheduler and each platform's sender, the
generation queue and the outbox backlog."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import tomllib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.models import Delivery, GenerationJob, ProcessBeat, utcnow

log = logging.getLogger(__name__)

BEAT_SECONDS = 5.0
ALIVE = timedelta(seconds=3 * BEAT_SECONDS)  # a process silent this long is shown as gone
FORGET = timedelta(hours=1)  # a gone process's row is dropped after this
BACKLOG = ("pending", "claimed", "sending")


def _version() -> str:
    try:
        with (Path(__file__).resolve().parent.parent / "pyproject.toml").open("rb") as file:
            return str(tomllib.load(file)["project"]["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "unknown"


VERSION = _version()


class Heartbeat:
    """Writes this process's row at start, renews it every BEAT_SECONDS and removes it at stop."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        roles: str,
        leads: Callable[[], list[str]],
        beat_seconds: float = BEAT_SECONDS,
    ) -> None:
        self.sessions = sessions
        self.roles = roles
        self.leads = leads
        self.beat_seconds = beat_seconds
        self.id = f"{socket.gethostname()[:40]}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    @property
    def started(self) -> bool:
        return self._task is not None

    async def start(self) -> None:
        now = utcnow()
        async with self.sessions() as session:
            await session.execute(delete(ProcessBeat).where(ProcessBeat.beat_at < now - FORGET))
            session.add(
                ProcessBeat(
                    id=self.id,
                    host=socket.gethostname()[:255],
                    pid=os.getpid(),
                    roles=self.roles,
                    version=VERSION,
                    leads=self._leads(),
                    started_at=now,
                    beat_at=now,
                )
            )
            await session.commit()
        self._task = asyncio.create_task(self._run(), name="heartbeat")

    def _leads(self) -> str:
        return ",".join(self.leads())[:255]

    async def beat(self) -> None:
        async with self.sessions() as session:
            await session.execute(
                update(ProcessBeat).where(ProcessBeat.id == self.id).values(beat_at=utcnow(), leads=self._leads())
            )
            await session.commit()

    async def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.beat_seconds)
            if self._stop.is_set():
                return
            try:
                await self.beat()
            except Exception:
                log.exception("could not write the heartbeat")

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await asyncio.wait([self._task])
        try:
            async with self.sessions() as session:
                await session.execute(delete(ProcessBeat).where(ProcessBeat.id == self.id))
                await session.commit()
        except Exception:
            log.exception("could not remove the heartbeat row")


@dataclass(frozen=True, slots=True)
class ProcessInfo:
    id: str
    host: str
    pid: int
    roles: str
    version: str
    leads: tuple[str, ...]
    started_at: datetime
    beat_at: datetime
    alive: bool


@dataclass(frozen=True, slots=True)
class Health:
    processes: list[ProcessInfo]
    scheduler_leader: str | None  # a live process's id
    senders: dict[str, str]  # platform -> the live process sending its outbox
    queued: int
    running: int
    oldest_queued_at: datetime | None
    backlog: dict[str, int] = field(default_factory=dict)  # platform -> rows not sent yet


async def health(sessions: async_sessionmaker[AsyncSession]) -> Health:
    async with sessions() as session:
        return await read(session)


async def read(session: AsyncSession) -> Health:
    """The deployment's health as seen in `session` (an admin's /stats reads it in the command's)."""
    now = utcnow()
    rows = (await session.scalars(select(ProcessBeat).order_by(ProcessBeat.started_at))).all()
    by_status = await session.execute(select(GenerationJob.status, func.count()).group_by(GenerationJob.status))
    counts = {status: count for status, count in by_status}
    oldest = await session.scalar(select(func.min(GenerationJob.created_at)).where(GenerationJob.status == "queued"))
    by_platform = await session.execute(
        select(Delivery.platform, func.count()).where(Delivery.status.in_(BACKLOG)).group_by(Delivery.platform)
    )
    backlog = {platform: count for platform, count in by_platform}
    processes = [
        ProcessInfo(
            r.id,
            r.host,
            r.pid,
            r.roles,
            r.version,
            tuple(x for x in r.leads.split(",") if x),
            r.started_at,
            r.beat_at,
            r.beat_at >= now - ALIVE,
        )
        for r in rows
    ]
    # A process killed a moment ago still looks alive, with what it held: the freshest beat is the holder.
    leader: str | None = None
    senders: dict[str, str] = {}
    for p in sorted((p for p in processes if p.alive), key=lambda p: p.beat_at):
        for lead in p.leads:
            if lead == "scheduler":
                leader = p.id
            elif lead.startswith("outbox:"):
                senders[lead.removeprefix("outbox:")] = p.id
    oldest_at = oldest if isinstance(oldest, datetime) else None
    return Health(
        processes, leader, senders, int(counts.get("queued", 0)), int(counts.get("running", 0)), oldest_at, backlog
    )


def _ago(when: datetime, now: datetime) -> str:
    seconds = max(0, int((now - when).total_seconds()))
    if seconds < 120:
        return f"{seconds} s ago"
    if seconds < 7200:
        return f"{seconds // 60} min ago"
    return f"{seconds // 3600} h ago"


def render(report: Health, now: datetime | None = None) -> str:
    """The one text of the deployment's health: `python -m bots status` prints it, /stats ends with it."""
    now = now or utcnow()
    lines = [f"Processes ({sum(p.alive for p in report.processes)} alive):"]
    for p in report.processes:
        state = "alive" if p.alive else "GONE"
        leads = f", leads {', '.join(p.leads)}" if p.leads else ""
        lines.append(
            f"  {p.id} [{p.roles}] v{p.version}, {state}, started {_ago(p.started_at, now)}, "
            f"last beat {_ago(p.beat_at, now)}{leads}"
        )
    if not report.processes:
        lines.append("  none (no process has written a heartbeat)")
    lines.append(f"Scheduler leader: {report.scheduler_leader or 'none'}")
    senders = ", ".join(f"{k}: {v}" for k, v in sorted(report.senders.items())) or "none"
    lines.append(f"Outbox senders: {senders}")
    oldest = f", oldest queued {_ago(report.oldest_queued_at, now)}" if report.oldest_queued_at else ""
    lines.append(f"Generation queue: {report.queued} queued, {report.running} running{oldest}")
    backlog = ", ".join(f"{k}: {v}" for k, v in sorted(report.backlog.items())) or "empty"
    lines.append(f"Outbox backlog: {backlog}")
    return "\n".join(lines)
