"""The hourly purge and the six-hourly prune also run when the scheduler starts: on their interval
alone, a process restarted more often than that never purged, and deleted posts outlived
DELETED_RETENTION_DAYS."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from core.config import Settings


async def test_purge_and_prune_run_at_start_not_only_after_their_first_interval(
    settings: Settings, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core import scheduler
    from core.app import bootstrap
    from tests.conftest import empty_tables

    ran = {"purge": asyncio.Event(), "prune": asyncio.Event()}

    def recorder(name: str) -> Callable[[object], Awaitable[None]]:
        async def job(_core: object) -> None:
            ran[name].set()

        return job

    monkeypatch.setattr(scheduler, "purge_deleted", recorder("purge"))
    monkeypatch.setattr(scheduler, "prune", recorder("prune"))
    app = await bootstrap(settings)
    try:
        await app.start(schedule=True)
        await asyncio.wait_for(asyncio.gather(*(event.wait() for event in ran.values())), 10)
    finally:
        await app.aclose()
        await empty_tables(database_url)
