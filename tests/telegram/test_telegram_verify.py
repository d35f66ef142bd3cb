"""/verify of a Telegram photo: Telegram re-encodes photos, so the signature is gone, but a photo the bot
sent keeps Telegram's file_unique_id when it comes back (replied to, forwarded): the real PTB against
the fake Bot API, which re-encodes photos as Telegram does."""

from __future__ import annotations

import asyncio
import io
from typing import Any

from PIL import Image
from sqlalchemy import select

from core.app import Core
from core.models import SentFile
from tests.fakes.telegram_api import FakeTelegramAPI, RunningBot, User

ALICE, BOB, CAROL = User(111, "Alice", "alice"), User(222, "Bob", "bob"), User(333, "Carol", "carol")


def sent_line(post_id: int, author: str, prompt: str) -> str:
    return (
        f"✅ Sent from here: #{post_id} by @{author}, from the prompt “{prompt}”. Telegram's id for this photo "
        "shows it is the very file this bot sent. Its signature could not be checked, because Telegram "
        "re-encodes photos; send the picture as a file to check that too."
    )


async def answer_to(api: FakeTelegramAPI, user: User, mark: int) -> str:
    answer = await api.wait_for("sendMessage", lambda c: c.chat_id == str(user.id), after=mark)
    return str(answer.params["text"])


async def test_a_photo_the_bot_sent_is_recognised_by_telegrams_file_id(
    bot: RunningBot, api: FakeTelegramAPI, core: Core
) -> None:
    mark = len(api.calls)
    api.say(ALICE, "/imagine a harbour at dawn")
    photo = await api.wait_for("sendPhoto", lambda c: c.chat_id == str(ALICE.id), after=mark)
    post_id = int(photo.result["caption"].split()[0].lstrip("#"))
    [size_id, *_] = [size["file_id"] for size in photo.result["photo"]]
    assert not api.files[size_id].startswith(b"\x89PNG")  # what Telegram keeps is a JPEG: no signature

    await recorded(core, photo.result)
    mark = len(api.calls)
    api.say(ALICE, "/verify", reply_to=photo.result)  # the outbox sent that photo
    assert await answer_to(api, ALICE, mark) == sent_line(post_id, "alice", "a harbour at dawn")

    mark = len(api.calls)
    api.say(BOB, f"/post {post_id}")  # the card is sent straight back, not through the outbox
    card = await api.wait_for("sendPhoto", lambda c: c.chat_id == str(BOB.id), after=mark)
    await recorded(core, card.result)
    forwarded = api.message_update(BOB, "")["message"]
    del forwarded["text"]
    forwarded |= {"photo": card.result["photo"], "forward_origin": {"type": "user", "sender_user": ALICE.json()}}
    api.push({"update_id": 10_000, "message": forwarded})
    mark = len(api.calls)
    api.say(BOB, "/verify", reply_to=forwarded)
    assert await answer_to(api, BOB, mark) == sent_line(post_id, "alice", "a harbour at dawn")
    async with core.sessions() as session:
        assert set(await session.scalars(select(SentFile.post_id))) == {post_id}


async def recorded(core: Core, message: dict[str, Any]) -> None:
    """The photo's ids are recorded right after Telegram's answer; a person takes longer to send it back."""
    shown = {size["file_unique_id"] for size in message["photo"]}
    async with asyncio.timeout(5):
        while True:
            async with core.sessions() as session:
                if not shown - set(await session.scalars(select(SentFile.fingerprint))):
                    return
            await asyncio.sleep(0.02)


async def test_a_photo_not_sent_by_the_bot_is_said_to_carry_no_signature(bot: RunningBot, api: FakeTelegramAPI) -> None:
    out = io.BytesIO()
    Image.new("RGB", (200, 120), (40, 90, 160)).save(out, format="PNG")
    mark = len(api.calls)
    api.send_file(CAROL, out.getvalue(), "/verify")
    assert await answer_to(api, CAROL, mark) == (
        "❌ No signature: Telegram re-encodes photos, which removes it, or the picture was not made here. "
        "Send it as a file (not as a photo) to check it."
    )
    mark = len(api.calls)
    api.send_file(CAROL, out.getvalue(), "/verify", as_document=True)  # a file arrives as it was
    assert await answer_to(api, CAROL, mark) == "❌ Not made here: the picture carries no signature of this network."
