"""Webhook mode: the bot's own HTTP server on 127.0.0.1, fed the way Telegram feeds it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr
from sqlalchemy import func, select

from bots.telegram.context import WEBHOOK
from bots.telegram.webhook import SECRET_HEADER
from core.app import Core, bootstrap
from core.config import Settings
from core.models import GenerationJob
from tests.fakes.telegram_api import FakeTelegramAPI, RunningBot, User, start_bot
from tests.processes import needs_postgres

ALICE = User(111, "Alice", "alice")
BOB = User(222, "Bob", "bob")
SECRET = "s3cret-Token_for-tests"
HOOK = "https://bot.example.test/telegram/hook"


async def webhook_bot(core: Core, settings: Settings, api: FakeTelegramAPI, secret: str | None) -> RunningBot:
    return await start_bot(
        core,
        settings,
        api,
        telegram_webhook_url=HOOK,
        telegram_webhook_secret=SecretStr(secret) if secret else None,
        telegram_webhook_listen="127.0.0.1",
        telegram_webhook_port=0,
    )


@pytest.fixture
async def bot(core: Core, settings: Settings, api: FakeTelegramAPI) -> AsyncIterator[RunningBot]:
    running = await webhook_bot(core, settings, api, SECRET)
    yield running
    await running.close()


async def post(bot: RunningBot, body: Any, secret: str | None = SECRET) -> int:
    url = f"http://127.0.0.1:{bot.application.bot_data[WEBHOOK].port}/telegram/hook"
    headers = {SECRET_HEADER: secret} if secret is not None else {}
    async with aiohttp.ClientSession() as session:
        data = body if isinstance(body, bytes) else None
        async with session.post(url, json=None if data else body, data=data, headers=headers) as response:
            return response.status


async def test_the_webhook_is_registered_with_its_secret_and_no_polling_happens(
    bot: RunningBot, api: FakeTelegramAPI
) -> None:
    [registered] = api.calls_of("setWebhook")
    assert registered.params["url"] == HOOK
    assert registered.params["secret_token"] == SECRET
    assert api.calls_of("getUpdates") == []


async def test_a_request_without_the_secret_is_refused_with_403(bot: RunningBot, api: FakeTelegramAPI) -> None:
    update = api.message_update(ALICE, "/start")
    assert await post(bot, update, secret=None) == 403
    assert await post(bot, update, secret="wrong") == 403
    await asyncio.sleep(0.2)
    assert api.calls_of("sendMessage") == []
    assert await post(bot, update) == 200
    answer = await api.wait_for("sendMessage")
    assert "@alice" in answer.params["text"]


async def test_an_update_delivered_twice_is_handled_once(bot: RunningBot, api: FakeTelegramAPI) -> None:
    update = api.message_update(ALICE, "/imagine a paper boat")
    assert await post(bot, update) == 200
    assert await post(bot, update) == 200
    await api.wait_for("sendPhoto")
    await asyncio.sleep(0.3)
    assert len(api.calls_of("sendPhoto")) == 1
    assert len(api.calls_of("sendMessage")) == 1  # one progress message


async def test_an_update_delivered_to_two_webhook_processes_is_handled_once(
    bot: RunningBot, api: FakeTelegramAPI, settings: Settings
) -> None:
    """Two front-ends behind one proxy, each with its own core and engine on the one database
    (another process, as far as they can tell): a redelivered update reaches the other one."""
    other_core = await bootstrap(settings)
    await other_core.start()
    other = await webhook_bot(other_core, settings, api, SECRET)
    try:
        async with asyncio.timeout(10):  # the first bot's setWebhook already came: wait for this one's
            while WEBHOOK not in other.application.bot_data:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
        update = api.message_update(ALICE, "/imagine a paper boat")
        assert await post(bot, update) == 200
        assert await post(other, update) == 200
        await api.wait_for("sendPhoto")
        await asyncio.sleep(0.5)
    finally:
        await other.close()
        await other_core.aclose()
    assert len(api.calls_of("sendPhoto")) == 1
    assert len(api.calls_of("sendMessage")) == 1  # one progress message
    async with bot.application.bot_data["core"].sessions() as session:
        assert await session.scalar(select(func.count()).select_from(GenerationJob)) == 1


async def test_malformed_requests_are_answered_and_ignored(bot: RunningBot, api: FakeTelegramAPI) -> None:
    assert await post(bot, b"{not json") == 400
    assert await post(bot, {"update_id": 77, "message": {"text": "no chat"}}) == 200
    assert await post(bot, [1, 2, 3]) == 200
    assert await post(bot, api.message_update(ALICE, "/start")) == 200
    await api.wait_for("sendMessage")


async def test_deeply_nested_json_is_answered_400_without_a_traceback(
    bot: RunningBot, api: FakeTelegramAPI, caplog: pytest.LogCaptureFixture
) -> None:
    # Valid JSON that the parser cannot descend into raises RecursionError, which is not a ValueError.
    nested = b"[" * 50_000 + b"]" * 50_000
    assert await post(bot, nested) == 400
    assert await post(bot, b'{"update_id": 1, "message": ' * 20_000 + b"1" + b"}" * 20_000) == 400
    assert [r.getMessage() for r in caplog.records if r.exc_info] == []
    assert await post(bot, api.message_update(ALICE, "/start")) == 200
    await api.wait_for("sendMessage")


async def test_without_a_configured_secret_one_is_made_up(core: Core, settings: Settings, api: FakeTelegramAPI) -> None:
    running = await webhook_bot(core, settings, api, None)
    try:
        [registered] = api.calls_of("setWebhook")
        made_up = registered.params["secret_token"]
        assert len(made_up) >= 32
        assert await post(running, api.message_update(ALICE, "/start"), secret=None) == 403
        assert await post(running, api.message_update(ALICE, "/start"), secret=made_up) == 200
        await api.wait_for("sendMessage")
    finally:
        await running.close()


@needs_postgres
async def test_two_webhook_processes_take_turns_on_one_chat_in_arrival_order_but_not_on_two(
    bot: RunningBot, api: FakeTelegramAPI, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The per-chat turn (core.turns) between two front-ends: Alice's second update, at the other
    process while the first still handles her first, waits for it; Bob's does not."""
    log: list[str] = []

    def timed(core: Core, name: str, seconds: float) -> None:
        real = core.handle

        async def handle(actor: Any, text: str, **kwargs: Any) -> Any:
            log.append(f"{name} start {actor.user_id} {text}")
            await asyncio.sleep(seconds)
            try:
                return await real(actor, text, **kwargs)
            finally:
                log.append(f"{name} end {actor.user_id} {text}")

        monkeypatch.setattr(core, "handle", handle)

    other_core = await bootstrap(settings)
    await other_core.start()
    other = await webhook_bot(other_core, settings, api, SECRET)
    try:
        async with asyncio.timeout(10):
            while WEBHOOK not in other.application.bot_data:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
        timed(bot.application.bot_data["core"], "one", 0.8)
        timed(other_core, "two", 0.0)
        assert await post(bot, api.message_update(ALICE, "/start")) == 200
        await asyncio.sleep(0.2)  # the first process has her chat
        assert await post(other, api.message_update(ALICE, "/help")) == 200
        assert await post(other, api.message_update(BOB, "/help")) == 200
        async with asyncio.timeout(15):
            while len(api.calls_of("sendMessage")) < 3:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
    finally:
        await other.close()
        await other_core.aclose()
    alice, bob = ALICE.id, BOB.id
    assert log.index(f"one end {alice} /start") < log.index(f"two start {alice} /help")
    assert log.index(f"two end {bob} /help") < log.index(f"one end {alice} /start")  # not held up
    to_alice = [c.params["text"] for c in api.calls_of("sendMessage") if c.chat_id == str(alice)]
    assert len(to_alice) == 2 and to_alice[0].startswith("Welcome, @alice")  # in order
