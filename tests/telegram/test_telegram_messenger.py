"""The core's Messenger port on Telegram: how progress messages and cards are edited."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from PIL import Image as PILImage

from core.app import Core
from core.config import Settings
from core.messenger import CalledOff, MessageGone
from core.replies import Button, Image, Reply
from tests.fakes.telegram_api import FakeTelegramAPI, RunningBot, start_bot

CHAT = "111"
LIKE = ((Button("❤️ 0", "like 1"),),)


@pytest.fixture
def picture(tmp_path: Path) -> Path:
    path = tmp_path / "picture.png"
    PILImage.new("RGB", (8, 8), "blue").save(path)
    return path


def in_chat(api: FakeTelegramAPI) -> list[dict[str, object]]:
    return [message for (chat, _), message in api.messages.items() if chat == CHAT]


async def test_a_progress_message_is_edited_in_place_then_becomes_the_photo_post(
    bot: RunningBot, api: FakeTelegramAPI, picture: Path
) -> None:
    queued = await bot.messenger.send(CHAT, Reply(text="⏳ Queued, number 2 in line."))
    same = await bot.messenger.edit(queued, Reply(text="🎨 Generating…"))
    assert same == queued
    assert [m["text"] for m in in_chat(api)] == ["🎨 Generating…"]
    assert await bot.messenger.edit(queued, Reply(text="🎨 Generating…")) == queued  # "not modified" is fine

    post = Reply(text="#1 by @alice\na fox", image=Image(picture, "#1 by @alice\na fox"), buttons=LIKE)
    final = await bot.messenger.edit(queued, post)
    assert final != queued
    [message] = in_chat(api)
    assert message["caption"] == "#1 by @alice\na fox"
    assert message["reply_markup"] == {"inline_keyboard": [[{"text": "❤️ 0", "callback_data": "like 1"}]]}
    assert str(message["message_id"]) == final.message_id


async def test_a_photo_post_is_edited_in_place(bot: RunningBot, api: FakeTelegramAPI, picture: Path) -> None:
    card = Reply(text="#1 by @alice\na fox", image=Image(picture, "#1 by @alice\na fox"), buttons=LIKE)
    ref = await bot.messenger.send(CHAT, card)
    liked = Reply(text=card.text, image=card.image, buttons=((Button("❤️ 1", "like 1"),),))
    assert await bot.messenger.edit(ref, liked) == ref
    assert api.calls_of("editMessageCaption")[-1].button_labels == ["❤️ 1"]
    assert await bot.messenger.edit(ref, Reply(text="Deleted #1.")) == ref  # a photo takes text as its caption
    [message] = in_chat(api)
    assert message["caption"] == "Deleted #1."
    assert "reply_markup" not in message


async def test_editing_a_message_that_was_deleted_says_it_is_gone(bot: RunningBot, api: FakeTelegramAPI) -> None:
    ref = await bot.messenger.send(CHAT, Reply(text="⏳ Queued"))
    del api.messages[(CHAT, int(ref.message_id))]  # the person deleted it
    with pytest.raises(MessageGone):
        await bot.messenger.edit(ref, Reply(text="🎨 Generating…"))


async def test_on_wire_is_called_only_once_the_chats_pacing_lets_the_message_out(
    core: Core, settings: Settings, api: FakeTelegramAPI
) -> None:
    running = await start_bot(core, settings, api, chat_interval=1.0)
    try:
        await running.messenger.send(CHAT, Reply(text="first"))
        marked: list[tuple[float, int]] = []

        async def on_wire() -> bool:
            marked.append((time.monotonic(), len(api.calls)))
            return True

        await running.messenger.send(CHAT, Reply(text="second"), on_wire=on_wire)
        [(at, calls_before)] = marked
        second = api.calls_of("sendMessage", CHAT)[-1]
        # Then straight out: well under the 1 s a wait for its turn would take, even on a loaded machine.
        assert second.at - at < 0.6
        between = api.calls[calls_before : api.calls.index(second)]
        assert [c.method for c in between if c.method != "getUpdates"] == []  # polling may interleave
        assert at - api.calls_of("sendMessage", CHAT)[0].at >= 0.9  # not while it waited its turn

        async def taken_elsewhere() -> bool:
            return False

        with pytest.raises(CalledOff):
            await running.messenger.send(CHAT, Reply(text="third"), on_wire=taken_elsewhere)
        assert len(api.calls_of("sendMessage", CHAT)) == 2  # it never left
    finally:
        await running.close()
