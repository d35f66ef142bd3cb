"""The real program (`python -m bots`, with any roles) as processes on a database of their own, for the
scale-out tests (tests/core/test_scale.py) and the crash tests (tests/telegram/test_crash_delivery.py)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from tests.databases import TEST_DATABASE_URL, fresh_database

ROOT = Path(__file__).resolve().parent.parent
OWN_SETTINGS = (
    "TELEGRAM_",
    "OPENAI_",
    "DISCORD_",
    "DATABASE_",
    "MEDIA_",
    "IMAGE_",
    "GENERATION_",
    "ADMINS",
    "SCHEDULER_",
    "HEARTBEAT_",
)
needs_postgres = pytest.mark.skipif(
    not TEST_DATABASE_URL, reason="several processes on one database need PostgreSQL (SQLite allows one)"
)


@pytest.fixture
async def own_db(tmp_path: Path) -> AsyncIterator[str]:
    """A database of the processes' own (the suite's shared one is emptied under running tests)."""
    async with fresh_database(tmp_path) as url:
        yield url


class Proc:
    """One process of the program, started, stopped and killed at will; its log in `home`."""

    def __init__(self, name: str, home: Path, env: dict[str, str], *args: str) -> None:
        self.name, self.home, self.args = name, home, args
        self.env = (
            {k: v for k, v in os.environ.items() if not k.startswith(OWN_SETTINGS)}
            | {
                "PYTHONPATH": str(ROOT),
                "MEDIA_DIR": str(home / "media"),
            }
            | env
        )
        self.process: asyncio.subprocess.Process | None = None
        self.log_path = home / f"{name}.log"

    async def start(self) -> Proc:
        self.home.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bots",
                *self.args,
                cwd=self.home,
                env=self.env,
                stdin=asyncio.subprocess.PIPE,
                stdout=log,
                stderr=log,
            )
        return self

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    async def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 15)
            except TimeoutError:
                await self.kill()

    async def finished(self, within: float = 30) -> int:
        assert self.process is not None
        return await asyncio.wait_for(self.process.wait(), within)


async def until(probe: Callable[[], Awaitable[bool]], within: float = 30.0) -> None:
    async with asyncio.timeout(within):
        while not await probe():  # noqa: ASYNC110 (the state is in another process)
            await asyncio.sleep(0.05)
