"""Periodic work, run by APScheduler: digests, notification batches, the galleries' best of the
day, pruning old outbox rows, purging deleted posts and sweeping unused media files.

Every process with the scheduler role runs the schedule, but a tick does its work only in the
leader: the process holding the deployment's "scheduler" lock (core.leases, a PostgreSQL advisory
lock held for the leader's lifetime). The others try to take the lock at every tick, so when the
leader dies another takes over within one tick. Every job only writes outbox rows whose keys are
unique, so even a tick run twice would add nothing twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TYPE_CHECKING

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import and_, delete

from core import bans, gallery, media_sweep, outbox, safety, seen, sqlite_inline
from core.feed import digest, notifications
from core.models import Delivery, Notification, utcnow

if TYPE_CHECKING:
    from core.app import Core

log = logging.getLogger(__name__)

KEEP = timedelta(days=14)
STOP_GRACE_SECONDS = 5.0


class Scheduler(AsyncIOScheduler):  # type: ignore[misc]  # APScheduler 3 ships no types
    """APScheduler's, with a shutdown that lets running jobs finish: APScheduler 3 cancels them,
    mid-commit, and logs each as failed with a CancelledError traceback."""

    def __init__(self) -> None:
        super().__init__(timezone="UTC")
        self.in_flight: set[asyncio.Task[object]] = set()

    async def stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        self.pause()  # no new runs while the running ones finish
        if self.in_flight:
            await asyncio.wait(set(self.in_flight), timeout=grace)
        self.shutdown(wait=False)  # cancels what is still running after the grace period


async def digest_tick(core: Core) -> None:
    stats = await digest.compose_pass(core.sessions, core.settings, utcnow())
    if stats.considered:
        log.info("digests: %d considered, %d queued in %.1f s", stats.considered, stats.queued, stats.seconds)
        core.outbox.wake()


async def notification_tick(core: Core) -> None:
    if await notifications.batch_pass(core.sessions, core.settings, utcnow()):
        core.outbox.wake()


async def best_of_tick(core: Core) -> None:
    if await gallery.best_of_pass(core.sessions, core.settings, core.galleries, utcnow()):
        core.outbox.wake()


async def prune(core: Core) -> None:
    """Finished outbox rows and told notifications are kept two weeks for operators, then dropped;
    a gallery message still showing its post is kept as long as it shows, so that the post can be
    taken out of the gallery whenever it leaves the public places."""
    cutoff = utcnow() - KEEP
    showing = and_(Delivery.status == gallery.LIVE, Delivery.key.startswith("gallery:"))
    async with core.sessions() as session:
        await session.execute(
            delete(Delivery).where(Delivery.status.not_in(outbox.IN_FLIGHT), Delivery.created_at < cutoff, ~showing)
        )
        await session.execute(delete(Notification).where(Notification.batched_at < cutoff))
        await seen.forget_old(session)
        await session.commit()


async def purge_deleted(core: Core) -> None:
    """Deleted posts past DELETED_RETENTION_DAYS go for good, files too; the audit trail stays."""
    count = await safety.purge(core.sessions, core.media, utcnow(), core.settings.deleted_retention_days)
    if count:
        log.info("purged %d deleted posts", count)


async def sweep_media(core: Core) -> None:
    """Files no row names (a kill -9 between a file's save and its row's commit leaves one)."""
    age = timedelta(hours=core.settings.media_orphan_age_hours)
    log.info("%s", (await media_sweep.sweep(core.sessions, core.media, age)).summary())


async def end_bans(core: Core) -> None:
    await bans.lift_expired(core.sessions, utcnow(), core.galleries)


def _guarded(
    name: str, job: Callable[[Core], Awaitable[None]], core: Core, scheduler: Scheduler
) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        task = asyncio.current_task()
        assert task is not None
        scheduler.in_flight.add(task)
        try:
            if not await core.scheduler_lock.ensure():
                return  # another process leads the scheduler
            with sqlite_inline.background():  # nobody waits on it: its statements must not hold up the commands
                await job(core)
        except asyncio.CancelledError:
            # Only a shutdown cancels a job, and the job's own task ends here: one line, no traceback.
            log.warning("scheduled job %s was stopped by the shutdown before it finished", name)
        except Exception:
            log.exception("scheduled job %s failed", name)
        finally:
            scheduler.in_flight.discard(task)

    return run


def build(core: Core) -> Scheduler:
    scheduler = Scheduler()
    tick = core.settings.scheduler_tick_seconds
    every = {  # name: (job, seconds between runs)
        "digests": (digest_tick, tick),
        "notifications": (notification_tick, tick),
        "best-of": (best_of_tick, tick),
        "bans": (end_bans, tick),
        "prune": (prune, 6 * 3600),
        "purge": (purge_deleted, 3600),
        "media-sweep": (sweep_media, 6 * 3600),
    }
    for name, (job, seconds) in every.items():
        scheduler.add_job(
            _guarded(name, job, core, scheduler),
            "interval",
            seconds=seconds,
            id=name,
            name=name,
            coalesce=True,
            max_instances=1,
            # Every job also runs at start: on the interval alone, a process restarted more often
            # than the purge's hour would never purge.
            next_run_time=utcnow(),
        )
    return scheduler
