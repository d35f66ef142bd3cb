"""A requested image reaches the person who asked, exactly once, when the real program (`python -m
bots`, a process of its own) is killed with SIGKILL at the wrong moment and started again; against
the fake Bot API and the fake OpenAI server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from core.db import create_engine
from core.models import Delivery, GenerationJob
from tests.fakes.openai_server import FakeOpenAI, slow
from tests.fakes.telegram_api import FakeTelegramAPI, User
from tests.processes import Proc, until

ALICE = User(111, "Alice", "alice")


class Program:
    """`python -m bots` with the Telegram bot and the OpenAI backend, started and killed at will."""

    def __init__(self, api: FakeTelegramAPI, openai: FakeOpenAI, database_url: str, home: Path) -> None:
        self.api = api
        self.proc = Proc(
            "program",
            home,
            {
                "TELEGRAM_BOT_TOKEN": api.token,
                "TELEGRAM_API_BASE_URL": api.url,
                "IMAGE_BACKEND": "openai",
                "OPENAI_API_KEY": "sk-test",
                "OPENAI_BASE_URL": openai.base_url,
                "OPENAI_MODERATION": "false",
                "DATABASE_URL": database_url,
                "GENERATION_COOLDOWN_SECONDS": "0",
                # On PostgreSQL a killed process's job is taken over once its lease has passed (several
                # processes may share the database); a short lease keeps the restart within the test's wait.
                "GENERATION_LEASE_SECONDS": "2",
            },
        )

    async def start(self) -> None:
        mark = len(self.api.calls)
        await self.proc.start()
        # Start-up (imports, migrations) is a few seconds on a quiet machine and far more on a busy one.
        await self.api.wait_for("getUpdates", after=mark, within=90)

    async def kill(self) -> None:
        await self.proc.kill()

    async def stop(self) -> None:
        await self.proc.stop()


@pytest.fixture
async def program(api: FakeTelegramAPI, fake_openai: FakeOpenAI, own_db: str, tmp_path: Path) -> AsyncIterator[Program]:
    running = Program(api, fake_openai, own_db, tmp_path)
    yield running
    await running.stop()


@pytest.fixture
async def db(own_db: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(own_db)
    yield engine
    await engine.dispose()


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
    await until(lambda: asyncio.sleep(0, bool(fake_openai.image_requests)), within=15)
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
    await until(lambda: asyncio.sleep(0, bool(fake_openai.image_requests)), within=15)
    # An answer to another command holds Alice's chat while the image is finished: the photo waits its turn.
    api.fail("sendMessage", "slow", chat_id=ALICE.id, delay=60)
    mark = len(api.calls)
    api.say(ALICE, "/help")
    await api.wait_for("sendMessage", lambda c: c.chat_id == str(ALICE.id), after=mark)
    await until(lambda: job_done(db), within=15)
    await until(lambda: _in(result_row(db), ("claimed", "sending")), within=15)
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
