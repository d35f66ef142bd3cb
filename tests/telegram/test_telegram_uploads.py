"""A person's own photo through the real Telegram bot: a photo captioned /edit or /imagine, or /edit in
reply to a photo; the bot fetches the file with getFile from the fake Bot API server."""

from __future__ import annotations

from tests.core.test_uploads import photo_with_gps
from tests.fakes.telegram_api import FakeTelegramAPI, RunningBot, User

ALICE = User(111, "Alice", "alice")


async def test_a_photo_captioned_edit_becomes_a_post_that_says_it_started_from_it(
    bot: RunningBot, api: FakeTelegramAPI
) -> None:
    mark = len(api.calls)
    api.send_file(ALICE, photo_with_gps(), "/edit the same, as a watercolour")
    post = await api.wait_for("sendPhoto", lambda c: c.chat_id == str(ALICE.id), after=mark)
    assert "📷 Started from the author's own photo" in post.params["caption"]
    assert "the same, as a watercolour" in post.params["caption"]
    assert api.calls_of("getFile")


async def test_imagine_under_a_photo_and_edit_in_reply_to_one(bot: RunningBot, api: FakeTelegramAPI) -> None:
    mark = len(api.calls)
    api.send_file(ALICE, photo_with_gps(), "/imagine a fox made of this", as_document=True)
    post = await api.wait_for("sendPhoto", lambda c: c.chat_id == str(ALICE.id), after=mark)
    assert "📷 Started from" in post.params["caption"]
    mark = len(api.calls)
    sent = api.send_file(ALICE, photo_with_gps(), "")  # a photo without a caption: nothing to do yet
    api.say(ALICE, "/edit now in the rain", reply_to=sent["message"])
    post = await api.wait_for("sendPhoto", lambda c: c.chat_id == str(ALICE.id), after=mark)
    assert "now in the rain" in post.params["caption"] and "📷 Started from" in post.params["caption"]


async def test_a_file_that_is_not_a_picture_gets_one_line(bot: RunningBot, api: FakeTelegramAPI) -> None:
    mark = len(api.calls)
    api.send_file(ALICE, b"%PDF-1.7 not a picture" * 20, "/edit a cat", as_document=True)
    answer = await api.wait_for("sendMessage", lambda c: c.chat_id == str(ALICE.id), after=mark)
    assert answer.params["text"] == "That file is not a picture I can read. Send a photo (PNG, JPEG or WebP)."
