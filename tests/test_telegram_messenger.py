"""The core's Messenger port on Telegram: how progress messages and cards are edited."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image as PILImage

from core.replies import Button, Image, Reply
from tests.fakes.telegram_api import FakeTelegramAPI, RunningBot

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
