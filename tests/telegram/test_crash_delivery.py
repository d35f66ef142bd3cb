"""A requested image reaches the person who asked, exactly once, when the real program (`python -m
bots`, a process of its own) is killed with SIGKILL at the wrong moment and started again; against
the fake Bot API and the fake OpenAI server."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from core.db import create_engine
from core.models import Delivery, GenerationJob
from tests.conftest import TEST_DATABASE_URL, _create_pg_database, _drop_pg_database
from tests.fakes.openai_server import FakeOpenAI, slow
from tests.fakes.telegram_api import FakeTelegramAPI, User

ALICE = User(111, "Alice", "alice")
ROOT = Path(__file__).resolve().parents[2]
OWN_SETTINGS = ("TELEGRAM_", "OPENAI_", "DISCORD_", "DATABASE_", "MEDIA_", "IMAGE_", "GENERATION_", "ADMINS")


@pytest.fixture
async def program_db(tmp_path: Path) -> AsyncIterator[str]:
    """A database of the program's own (the suite's shared one is emptied under running tests)."""
    if not TEST_DATABASE_URL:
        yield f"sqlite+aiosqlite:///{tmp_path / 'program.db'}"
        return
    url = await _create_pg_database(TEST_DATABASE_URL)
    try:
        yield url
    finally:
        await _drop_pg_database(TEST_DATABASE_URL, url)


class Program:
    """`python -m bots` with the Telegram bot and the OpenAI backend, started and killed at will."""

    def __init__(self, api: FakeTelegramAPI, openai: FakeOpenAI, database_url: str, home: Path) -> None:
        self.api, self.home = api, home
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(OWN_SETTINGS)} | {
            "PYTHONPATH": str(ROOT),
            "TELEGRAM_BOT_TOKEN": api.token,
            "TELEGRAM_API_BASE_URL": api.url,
            "IMAGE_BACKEND": "openai",
            "OPENAI_API_KEY": "sk-test",
            "OPENAI_BASE_URL": openai.base_url,
            "OPENAI_MODERATION": "false",
            "DATABASE_URL": database_url,
            "MEDIA_DIR": str(home / "media"),
            "GENERATION_COOLDOWN_SECONDS": "0",
            # On PostgreSQL a killed process's job is taken over once its lease has passed (several
            # processes may share the database); a short lease keeps the restart within the test's wait.
            "GENERATION_LEASE_SECONDS": "2",
        }
        self.process: asyncio.subprocess.Process | None = None
        self.runs = 0

    async def start(self) -> None:
        self.runs += 1
        mark = len(self.api.calls)
        log = (self.home / f"run-{self.runs}.log").open("wb")
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bots", cwd=self.home, env=self.env, stdout=log, stderr=log
        )
        log.close()
        # Start-up (imports, migrations) is a few seconds on a quiet machine and far more on a busy one.
        await self.api.wait_for("getUpdates", after=mark, within=90)

    async def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 10)
            except TimeoutError:
                await self.kill()


@pytest.fixture
async def program(
    api: FakeTelegramAPI, fake_openai: FakeOpenAI, program_db: str, tmp_path: Path
) -> AsyncIterator[Program]:
    running = Program(api, fake_openai, program_db, tmp_path)
    yield running
    await running.stop()


@pytest.fixture
async def db(program_db: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(program_db)
    yield engine
    await engine.dispose()


async def until(probe: Callable[[], Awaitable[bool]], within: float = 15.0) -> None:
    async with asyncio.timeout(within):
        while not await probe():  # noqa: ASYNC110 (the state is in another process)
            await asyncio.sleep(0.05)


async def job_done(db: AsyncEngine) -> bool:
    async with db.connect() as conn:
        return await conn.scalar(select(GenerationJob.status)) == "done"


async def result_row(db: AsyncEngine) -> str | None:
    """The status of the latest progress row: the one that brings the finished post."""
    async with db.connect() as conn:
        latest = select(Delivery.status).where(Delivery.kind == "job").order_by(Delivery.id.desc()).limit(1)
        return await conn.scalar(latest)


async def rows(db: AsyncEngine) -> list[tuple[str, str, str | None]]:
    async with db.connect() as conn:
        return [tuple(r) for r in await conn.execute(select(Delivery.key, Delivery.status, Delivery.error))]


def photos_to(api: FakeTelegramAPI, user: User) -> list[str]:
    return [str(c.params.get("caption")) for c in api.delivered(user.id) if c.method == "sendPhoto"]


def progress_left(api: FakeTelegramAPI, user: User) -> list[str]:
    """Texts in the person's chat that still show an image in progress."""
    texts = [str(m.get("text")) for (chat, _), m in api.messages.items() if chat == str(user.id)]
    return [t for t in texts if "Queued" in t or "Generating" in t]


async def settled(api: FakeTelegramAPI, user: User) -> None:
    """Long enough for a duplicate to show up, if one were coming."""
    await asyncio.sleep(2.0)


async def test_killed_while_the_queued_reply_waits_the_restart_sends_the_result_as_a_new_message(
    program: Program, api: FakeTelegramAPI, fake_openai: FakeOpenAI
) -> None:
    await program.start()
    fake_openai.script_images(slow(60))  # the first process never sees its image
    api.fail("sendMessage", "slow", chat_id=ALICE.id, delay=60)  # Alice's chat is busy with this answer
    api.say(ALICE, "/start")
    await api.wait_for("sendMessage", lambda c: c.chat_id == str(ALICE.id))
    api.say(ALICE, "/imagine a red fox in the snow")
    await until(lambda: asyncio.sleep(0, bool(fake_openai.image_requests)))
    assert len(api.calls_of("sendMessage", ALICE.id)) == 1  # the "Queued" reply is still waiting its turn
    await program.kill()

    await program.start()
    await api.wait_for("sendPhoto", lambda c: c.chat_id == str(ALICE.id), within=15)
    await settled(api, ALICE)
    [caption] = photos_to(api, ALICE)
    assert "a red fox in the snow" in caption
    assert len(fake_openai.image_requests) == 2  # generated again after the restart, once


async def test_killed_while_the_photo_waits_in_the_rate_limiter_the_restart_sends_it_once(
    program: Program, api: FakeTelegramAPI, fake_openai: FakeOpenAI, db: AsyncEngine
) -> None:
    await program.start()
    fake_openai.script_images(slow(1.5))
    api.say(ALICE, "/imagine a lighthouse at dusk")
    await api.wait_for("sendMessage", lambda c: c.chat_id == str(ALICE.id) and "Queued" in c.params["text"])
    await until(lambda: asyncio.sleep(0, bool(fake_openai.image_requests)))
    # An answer to another command holds Alice's chat while the image is finished: the photo waits its turn.
    api.fail("sendMessage", "slow", chat_id=ALICE.id, delay=60)
    mark = len(api.calls)
    api.say(ALICE, "/help")
    await api.wait_for("sendMessage", lambda c: c.chat_id == str(ALICE.id), after=mark)
    await until(lambda: job_done(db))
    await until(lambda: _in(result_row(db), ("claimed", "sending")))
    await asyncio.sleep(0.5)
    assert photos_to(api, ALICE) == []
    await program.kill()

    await program.start()
    await api.wait_for("sendPhoto", lambda c: c.chat_id == str(ALICE.id), within=15)
    await settled(api, ALICE)
    [caption] = photos_to(api, ALICE)
    assert "a lighthouse at dusk" in caption
    assert await result_row(db) == "sent"
    await until(lambda: asyncio.sleep(0, not progress_left(api, ALICE)), within=5)  # the progress text is gone


async def test_killed_while_the_photo_is_on_the_wire_it_is_not_sent_again(
    program: Program, api: FakeTelegramAPI, fake_openai: FakeOpenAI, db: AsyncEngine
) -> None:
    await program.start()
    api.fail("sendPhoto", "slow", chat_id=ALICE.id, delay=60)  # Telegram has it; the answer never comes
    api.say(ALICE, "/imagine a quiet harbour")
    await api.wait_for("sendPhoto", lambda c: c.chat_id == str(ALICE.id), within=15)
    assert await result_row(db) == "sending", (await rows(db), [(c.method, c.status) for c in api.calls])
    await program.kill()

    await program.start()
    await until(lambda: _in(result_row(db), ("uncertain",)), within=15)
    await settled(api, ALICE)
    assert len(photos_to(api, ALICE)) == 1  # never repeated: a duplicate is worse than a gap


async def _in(status: Awaitable[str | None], wanted: tuple[str, ...]) -> bool:
    return await status in wanted
