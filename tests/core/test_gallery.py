"""Gallery channels: every public post published once, and its like count kept up to date."""

from __future__ import annotations

import asyncio
import time

from pydantic import SecretStr
from sqlalchemy import select

from core.app import Core, bootstrap
from core.config import Settings
from core.models import Delivery
from tests.conftest import empty_tables
from tests.fakes.platform import FakeMessenger
from tests.support import Chat


async def drained(core: Core) -> None:
    core.outbox.wake()
    async with asyncio.timeout(15):
        await core.drain()


async def test_likes_from_anywhere_update_the_gallery_message_once_per_window(chat: Chat, core: Core) -> None:
    window = 2.0
    core.settings.gallery_refresh_seconds = window
    core.outbox.poll_seconds = 0.05
    platform = FakeMessenger()
    core.register_messenger(platform)
    core.register_gallery("console", "gallery")
    post_id = await chat.post("alice", "a fox for the gallery")
    await drained(core)
    [published] = platform.to("gallery")
    assert published.post_id == post_id and published.buttons[0][0].label == "❤️ 0"

    # Windows are aligned to the clock: start the likes at the start of one, so that a slow machine
    # cannot spread them over two.
    await asyncio.sleep(window - time.time() % window + 0.01)
    for fan in ("bob", "carol", "dan"):  # liked in their own chats, not in the gallery
        await chat.say(fan, f"/like {post_id}")
    await drained(core)

    assert len(platform.edits) == 1  # three likes in one window: one edit
    ref, edited = platform.edits[0]
    assert ref.chat_id == "gallery" and edited.post_id == post_id
    assert edited.buttons[0][0].label == "❤️ 3"
    assert len(platform.to("gallery")) == 1  # edited in place, never posted again


async def test_a_private_post_never_reaches_the_gallery_and_likes_on_it_edit_nothing(chat: Chat, core: Core) -> None:
    platform = FakeMessenger()
    core.register_messenger(platform)
    core.register_gallery("console", "gallery")
    secret = await chat.post("alice", "a secret fox --private")
    await chat.say("alice", f"/like {secret}")
    await drained(core)
    assert platform.to("gallery") == [] and platform.edits == []


async def test_a_process_without_the_messengers_still_publishes_to_the_configured_galleries(
    settings: Settings, database_url: str
) -> None:
    # A `--roles workers` process runs no adapter, yet the posts it finishes must reach the galleries:
    # the outbox rows it writes are sent by whichever process holds the senders' role.
    token = "123456:" + "A" * 35
    settings = settings.model_copy(
        update={
            "telegram_bot_token": SecretStr(token),
            "telegram_gallery_chat_id": "-100200",
            "discord_bot_token": SecretStr("discord-token"),
            "discord_gallery_channel_id": 777,
        }
    )
    worker = await bootstrap(settings)
    await worker.start()
    try:
        post_id = await Chat(worker).post("alice", "a fox made by a worker")
        async with worker.sessions() as session:
            keys = set(await session.scalars(select(Delivery.key).where(Delivery.kind == "post")))
        assert {f"gallery:telegram:-100200:{post_id}", f"gallery:discord:777:{post_id}"} <= keys
    finally:
        await worker.aclose()
        await empty_tables(database_url)
