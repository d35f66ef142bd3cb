"""Telegram's limits and failures, against the fake Bot API: flood limits, 429, 403, timeouts, lengths."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from PIL import Image as PILImage
from sqlalchemy import select

from bots.telegram.limiter import FloodLimiter
from core.app import Core
from core.config import ConfigError, Settings, load_settings
from core.messenger import DeliveryUncertain, Unreachable
from core.models import Identity
from core.replies import Image, Reply
from tests.fakes.telegram_api import Call, ChatInfo, FakeTelegramAPI, RunningBot, User, start_bot

ALICE = User(111, "Alice", "alice")
BOB = User(222, "Bob", "bob")


@pytest.fixture
def picture(tmp_path: Path) -> Path:
    path = tmp_path / "picture.png"
    PILImage.new("RGB", (8, 8), "red").save(path)
    return path


async def test_a_429_pauses_sending_and_the_message_is_then_delivered_once(
    bot: RunningBot, api: FakeTelegramAPI
) -> None:
    api.fail("sendMessage", "429", retry_after=1)
    api.say(ALICE, "/start")
    delivered = await api.wait_for("sendMessage", lambda c: c.chat_id == str(ALICE.id))
    first, second = api.calls_of("sendMessage", ALICE.id)
    assert (first.status, second.status) == (429, 200)
    assert second.at - first.at >= 1.0
    await asyncio.sleep(0.2)
    assert api.delivered(ALICE.id) == [delivered]


async def test_a_person_who_blocked_the_bot_is_marked_unreachable_and_skipped_until_they_write_again(
    bot: RunningBot, api: FakeTelegramAPI, core: Core
) -> None:
    api.fail("sendMessage", "403", chat_id=ALICE.id)
    api.say(ALICE, "/start")
    await api.wait_for("sendMessage", lambda c: c.status == 403, any_status=True)
    await eventually(lambda: unreachable(core, ALICE))
    assert [c.status for c in api.calls_of("sendMessage", ALICE.id)] == [403]

    with pytest.raises(Unreachable):  # skipped without asking Telegram
        await bot.messenger.send(str(ALICE.id), Reply(text="a notification"))
    assert len(api.calls_of("sendMessage", ALICE.id)) == 1

    bob = await reply(api, BOB, "/start")  # everyone else is served as before
    assert "@bob" in bob.params["text"]

    again = await reply(api, ALICE, "/profile")  # she writes again: reachable again
    assert "Alice (@alice)" in again.params["text"]
    assert await unreachable(core, ALICE) is False
    await bot.messenger.send(str(ALICE.id), Reply(text="a notification"))


async def test_a_send_that_timed_out_is_not_repeated(core: Core, settings: Settings, api: FakeTelegramAPI) -> None:
    running = await start_bot(core, settings, api, read_timeout=0.3)
    try:
        api.fail("sendMessage", "hang")
        with pytest.raises(DeliveryUncertain):
            await running.messenger.send(str(ALICE.id), Reply(text="maybe delivered"))
        api.fail("sendMessage", "hang")
        api.say(BOB, "/start")
        await api.wait_for(
            "sendMessage", lambda c: c.chat_id == str(BOB.id) and c.status == 0, within=3, any_status=True
        )
        await asyncio.sleep(0.6)  # past the read timeout: no second try
        assert len(api.calls_of("sendMessage", ALICE.id)) == 1
        assert len(api.calls_of("sendMessage", BOB.id)) == 1
        assert "@bob" in (await reply(api, BOB, "/profile")).params["text"]  # and the bot goes on
    finally:
        await running.close()


async def test_a_network_error_while_sending_does_not_stop_the_bot(bot: RunningBot, api: FakeTelegramAPI) -> None:
    api.fail("sendMessage", "500")
    api.say(ALICE, "/start")
    await api.wait_for("sendMessage", lambda c: c.status == 500, any_status=True)
    assert "@bob" in (await reply(api, BOB, "/start")).params["text"]


async def test_captions_and_texts_are_cut_to_telegrams_limits(
    bot: RunningBot, api: FakeTelegramAPI, picture: Path
) -> None:
    caption = "#1 by @alice\n" + "🦊 fox " * 400  # emoji count twice in Telegram's UTF-16 limit
    await bot.messenger.send(str(ALICE.id), Reply(text=caption, image=Image(picture, caption)))
    [photo] = api.calls_of("sendPhoto", ALICE.id)
    assert photo.status == 200
    assert photo.params["caption"].startswith("#1 by @alice\n🦊 fox")
    assert photo.params["caption"].endswith("…")
    assert photo.files["photo"] == picture.read_bytes()  # noqa: ASYNC240  # a tiny local file
    await bot.messenger.send(str(ALICE.id), Reply(text="word " * 2000))
    [message] = api.calls_of("sendMessage", ALICE.id)
    assert message.status == 200
    assert 4000 < len(message.params["text"]) <= 4096
    assert message.params["text"].endswith("word…")


async def test_messages_to_one_chat_are_spaced_a_second_apart_and_keep_their_order(
    core: Core, settings: Settings, api: FakeTelegramAPI
) -> None:
    running = await start_bot(core, settings, api, chat_interval=1.0)
    try:
        chat = str(ALICE.id)
        await asyncio.gather(*(running.messenger.send(chat, Reply(text=f"message {n}")) for n in range(3)))
        sent = api.calls_of("sendMessage", chat)
        assert [c.params["text"] for c in sent] == ["message 0", "message 1", "message 2"]
        assert all(later.at - earlier.at >= 1.0 for earlier, later in itertools.pairwise(sent))
    finally:
        await running.close()


async def test_a_burst_to_many_chats_stays_under_the_overall_rate(
    core: Core, settings: Settings, api: FakeTelegramAPI
) -> None:
    running = await start_bot(core, settings, api, telegram_messages_per_second=10.0)
    try:
        chats = [str(1000 + n) for n in range(8)]
        await asyncio.gather(*(running.messenger.send(chat, Reply(text="hello")) for chat in chats))
        times = sorted(c.at for c in api.calls_of("sendMessage"))
        assert len(times) == 8
        assert times[-1] - times[0] >= 7 / 10 - 0.02  # 8 messages at 10 a second
    finally:
        await running.close()


async def test_a_group_gets_at_most_its_quota_per_window(core: Core, settings: Settings, api: FakeTelegramAPI) -> None:
    running = await start_bot(core, settings, api, group_max=3, group_period=1.0)
    try:
        group = ChatInfo(-4001, "group", "Painters")
        api.chats[group.id] = group
        await asyncio.gather(*(running.messenger.send(str(group.id), Reply(text=f"n{n}")) for n in range(5)))
        times = [c.at for c in api.calls_of("sendMessage", group.id)]
        assert len(times) == 5
        assert times[3] - times[0] >= 1.0 and times[4] - times[1] >= 1.0  # never 4 inside one window
        assert times[2] - times[0] < 0.5  # within the quota there is no waiting
    finally:
        await running.close()


async def test_the_overall_rate_cannot_be_set_above_telegrams_limit() -> None:
    with pytest.raises(ConfigError, match="TELEGRAM_MESSAGES_PER_SECOND"):
        load_settings(_env_file=None, telegram_messages_per_second=31)
    assert load_settings(_env_file=None).telegram_messages_per_second == 25
    with pytest.raises(ValueError):
        FloodLimiter(31)


async def reply(api: FakeTelegramAPI, user: User, line: str) -> Call:
    mark = len(api.calls)
    api.say(user, line)
    return await api.wait_for("sendMessage", lambda c: c.chat_id == str(user.id), after=mark)


async def unreachable(core: Core, user: User) -> bool:
    async with core.sessions() as session:
        identity = await session.scalar(
            select(Identity).where(Identity.platform == "telegram", Identity.platform_user_id == str(user.id))
        )
    assert identity is not None
    return identity.unreachable


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 3.0) -> None:
    async with asyncio.timeout(within):
        while not await check():  # noqa: ASYNC110  # a database row, not an event
            await asyncio.sleep(0.02)
