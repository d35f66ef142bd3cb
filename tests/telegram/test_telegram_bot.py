"""The real Telegram application, long polling a fake Bot API server over HTTP."""

from __future__ import annotations

import asyncio

from pydantic import SecretStr

from core import commands
from core.actor import Actor
from core.app import Core
from core.config import Settings
from tests.fakes.telegram_api import Call, ChatInfo, FakeTelegramAPI, RunningBot, User, start_bot

ALICE = User(111, "Alice", "alice")
BOB = User(222, "Bob", "bob")


async def reply_to(api: FakeTelegramAPI, user: User, line: str, method: str = "sendMessage") -> Call:
    """Say `line` and wait for the bot's answer in the same chat."""
    mark = len(api.calls)
    api.say(user, line)
    return await api.wait_for(method, lambda c: c.chat_id == str(user.id), after=mark)


async def imagine(api: FakeTelegramAPI, user: User, prompt: str) -> Call:
    return await reply_to(api, user, f"/imagine {prompt}", "sendPhoto")


async def show(api: FakeTelegramAPI, user: User, photo: Call) -> tuple[Call, str]:
    """`user` looks at the post in `photo` with /post, in their own chat; returns the shown post and its id."""
    post_id = photo.result["caption"].split()[0].lstrip("#")
    return await reply_to(api, user, f"/post {post_id}", "sendPhoto"), post_id


async def test_start_is_answered_and_the_command_list_is_registered(bot: RunningBot, api: FakeTelegramAPI) -> None:
    [registered] = api.calls_of("setMyCommands")
    assert [c["command"] for c in registered.params["commands"]] == [c.name for c in commands.listed()]
    answer = await reply_to(api, ALICE, "/start")
    assert "@alice" in answer.params["text"]


async def test_imagine_shows_progress_that_ends_as_the_photo_post_with_its_keyboard(
    bot: RunningBot, api: FakeTelegramAPI
) -> None:
    photo = await imagine(api, ALICE, "a red fox in the snow")
    assert "a red fox in the snow" in photo.params["caption"]
    assert photo.files["photo"][:4] in (b"\x89PNG", b"\xff\xd8\xff\xe0", b"RIFF")
    post_id = photo.result["caption"].split()[0].lstrip("#")
    # The report button sits on every card, Telegram's too; in her own chat, no button to follow herself.
    assert photo.button_actions == [
        f"like {post_id}",
        f"remix {post_id}",
        f"vary {post_id}",
        f"comment {post_id}",
        f"report {post_id}",
    ]
    # The progress message came first and is deleted: the chat ends with the photo post alone.
    [progress] = api.calls_of("sendMessage", ALICE.id)
    assert "a red fox in the snow" in progress.params["text"]
    await api.wait_for("deleteMessage", lambda c: c.params["message_id"] == str(progress.result["message_id"]))
    assert [m["message_id"] for (chat, _), m in api.messages.items() if chat == str(ALICE.id)] == [
        photo.result["message_id"]
    ]


async def test_a_like_is_answered_and_the_count_on_the_button_updated(bot: RunningBot, api: FakeTelegramAPI) -> None:
    photo, post_id = await show(api, BOB, await imagine(api, ALICE, "a lighthouse"))
    mark = len(api.calls)
    api.press(BOB, photo.result, f"like {post_id}")
    answered = await api.wait_for("answerCallbackQuery", after=mark)
    assert "liked" in answered.params["text"]
    edit = await api.wait_for("editMessageCaption", after=mark)
    assert edit.button_labels[0] == "❤️ 1"
    assert api.message(photo)["reply_markup"]["inline_keyboard"][0][0]["text"] == "❤️ 1"


async def test_follow_feed_and_profile(bot: RunningBot, api: FakeTelegramAPI) -> None:
    await imagine(api, ALICE, "a quiet harbour at dawn")
    followed = await reply_to(api, BOB, "/follow @alice")
    assert "@alice" in followed.params["text"]
    feed = await reply_to(api, BOB, "/feed", "sendPhoto")
    assert "a quiet harbour at dawn" in feed.params["caption"]
    profile = await reply_to(api, BOB, "/profile @alice")
    assert "Alice (@alice)" in profile.params["text"]


async def test_remix_asks_with_a_reply_prompt_and_takes_the_reply_as_the_prompt(
    bot: RunningBot, api: FakeTelegramAPI
) -> None:
    photo, post_id = await show(api, BOB, await imagine(api, ALICE, "a castle on a hill"))
    mark = len(api.calls)
    api.press(BOB, photo.result, f"remix {post_id}")
    question = await api.wait_for("sendMessage", lambda c: c.chat_id == str(BOB.id), after=mark)
    assert question.params["reply_markup"]["force_reply"] is True
    await api.wait_for("answerCallbackQuery", after=mark)
    mark = len(api.calls)
    api.say(BOB, "the castle at night", reply_to=question.result)
    remix = await api.wait_for("sendPhoto", lambda c: c.chat_id == str(BOB.id), after=mark)
    assert "the castle at night" in remix.params["caption"]
    assert f"Remix of #{post_id} by @alice" in remix.params["caption"]


async def test_a_group_command_with_the_bots_name_is_answered_in_the_group(
    bot: RunningBot, api: FakeTelegramAPI
) -> None:
    group = ChatInfo(-4001, "group", "Painters")
    mark = len(api.calls)
    api.say(ALICE, "/start@other_bot", chat=group)  # for another bot: not ours to answer
    command = api.say(ALICE, "/start@imagenet_test_bot", chat=group)
    answer = await api.wait_for("sendMessage", lambda c: c.chat_id == str(group.id), after=mark)
    assert "@alice" in answer.params["text"]
    assert answer.params["reply_parameters"]["message_id"] == command["message"]["message_id"]
    api.say(ALICE, "/profile@imagenet_test_bot", chat=group)
    await api.wait_for("sendMessage", lambda c: "Alice (@alice)" in c.params["text"], after=mark)
    assert len(api.calls_of("sendMessage", group.id)) == 2


async def test_a_malformed_update_is_skipped_and_the_bot_goes_on(bot: RunningBot, api: FakeTelegramAPI) -> None:
    api.push({"message": {"text": "no chat, no date, no id"}})
    api.push({"callback_query": "not an object"})
    answer = await reply_to(api, ALICE, "/start")
    assert "@alice" in answer.params["text"]


async def test_public_posts_go_to_the_gallery_channel_where_likes_count(
    core: Core, settings: Settings, api: FakeTelegramAPI
) -> None:
    channel = ChatInfo(-100777, "channel", "Gallery")
    api.chats[channel.id] = channel
    running = await start_bot(core, settings, api, telegram_gallery_chat_id=str(channel.id))
    try:
        await imagine(api, ALICE, "a private sketch --private")
        await imagine(api, ALICE, "a harbour in the fog")
        posted = await api.wait_for("sendPhoto", lambda c: c.chat_id == str(channel.id))
        assert "a harbour in the fog" in posted.params["caption"]
        post_id = posted.result["caption"].split()[0].lstrip("#")
        assert posted.button_actions[0] == f"like {post_id}"

        mark = len(api.calls)
        api.press(BOB, posted.result, f"like {post_id}")
        answered = await api.wait_for("answerCallbackQuery", after=mark)
        assert "liked" in answered.params["text"]
        edit = await api.wait_for("editMessageCaption", lambda c: c.chat_id == str(channel.id), after=mark)
        assert edit.button_labels[0] == "❤️ 1"
        assert api.message(posted)["reply_markup"]["inline_keyboard"][0][0]["text"] == "❤️ 1"

        # Nobody can answer in a channel: the remix question goes to the person's private chat.
        mark = len(api.calls)
        api.press(BOB, api.message(posted), f"remix {post_id}")
        question = await api.wait_for("sendMessage", after=mark)
        assert question.chat_id == str(BOB.id)
        assert question.params["reply_markup"]["force_reply"] is True
        assert len(api.calls_of("sendPhoto", channel.id)) == 1  # the private sketch stayed out
    finally:
        await running.close()


async def test_python_m_bots_runs_the_telegram_bot_when_its_token_is_set(
    core: Core, settings: Settings, api: FakeTelegramAPI
) -> None:
    from bots.__main__ import run_messengers

    configured = settings.model_copy(
        update={"telegram_bot_token": SecretStr(api.token), "telegram_api_base_url": api.url}
    )
    stop = asyncio.Event()
    running = asyncio.create_task(run_messengers(core, configured, stop))
    try:
        answer = await reply_to(api, ALICE, "/start")
        assert "@alice" in answer.params["text"]
    finally:
        stop.set()
        await asyncio.wait_for(running, 10)


async def test_polling_goes_on_after_a_network_error(bot: RunningBot, api: FakeTelegramAPI) -> None:
    api.fail("getUpdates", "500")
    await api.wait_for("getUpdates", lambda c: c.status == 500, any_status=True)
    answer = await reply_to(api, ALICE, "/start")
    assert "@alice" in answer.params["text"]


async def test_long_polling_asks_for_a_whole_number_of_seconds(bot: RunningBot, api: FakeTelegramAPI) -> None:
    # The Bot API types getUpdates' timeout as Integer; the float setting (1.0 s here) went out as "1.0".
    polled = await api.wait_for("getUpdates", lambda c: c.params.get("timeout") not in (None, "0"))
    assert polled.params["timeout"] == "1"


async def test_a_forged_admin_button_is_refused_in_one_line_and_changes_nothing(
    bot: RunningBot, api: FakeTelegramAPI
) -> None:
    photo, post_id = await show(api, BOB, await imagine(api, ALICE, "a forged target"))
    for forged in (f"hide {post_id}", f"remove {post_id}", "ban alice"):
        mark = len(api.calls)
        api.press(BOB, photo.result, forged)  # callback data Bob wrote himself, not a button we sent
        answered = await api.wait_for("answerCallbackQuery", after=mark)
        assert answered.params["text"] == "Only admins can do that.", forged
    shown, _ = await show(api, ALICE, photo)  # still there, and Alice may still post
    assert "a forged target" in shown.params["caption"] and "Hidden" not in shown.params["caption"]
    assert "a second one" in (await imagine(api, ALICE, "a second one")).params["caption"]


async def test_a_hidden_posts_gallery_message_is_deleted_in_the_channel(
    core: Core, settings: Settings, api: FakeTelegramAPI
) -> None:
    channel = ChatInfo(-100778, "channel", "Gallery")
    api.chats[channel.id] = channel
    running = await start_bot(core, settings, api, telegram_gallery_chat_id=str(channel.id))
    try:
        await imagine(api, ALICE, "a harbour to hide")
        posted = await api.wait_for("sendPhoto", lambda c: c.chat_id == str(channel.id))
        post_id = posted.result["caption"].split()[0].lstrip("#")
        mark = len(api.calls)
        # An admin hides it from the console (ADMINS names "admin" there).
        await core.handle(Actor("console", "admin", chat_id="chat-admin"), f"/hide {post_id}")
        core.outbox.wake()
        deleted = await api.wait_for("deleteMessage", lambda c: c.chat_id == str(channel.id), after=mark)
        assert deleted.params["message_id"] == str(posted.result["message_id"])
    finally:
        await running.close()


async def test_a_restored_post_and_the_posts_of_a_lifted_ban_are_published_in_the_channel_again(
    core: Core, settings: Settings, api: FakeTelegramAPI
) -> None:
    channel = ChatInfo(-100779, "channel", "Gallery")
    api.chats[channel.id] = channel
    running = await start_bot(core, settings, api, telegram_gallery_chat_id=str(channel.id))
    admin = Actor("console", "admin", chat_id="chat-admin")  # ADMINS names "admin" there

    def in_channel() -> list[str]:
        return sorted(
            m.get("caption", "").split()[0] for (chat, _), m in api.messages.items() if chat == str(channel.id)
        )

    async def then(line: str, method: str) -> Call:
        mark = len(api.calls)
        await core.handle(admin, line)
        core.outbox.wake()
        return await api.wait_for(method, lambda c: c.chat_id == str(channel.id), after=mark)

    try:
        await imagine(api, ALICE, "a harbour to hide and restore")
        posted = await api.wait_for("sendPhoto", lambda c: c.chat_id == str(channel.id))
        post_id = posted.result["caption"].split()[0].lstrip("#")
        await then(f"/hide {post_id}", "deleteMessage")
        assert in_channel() == []
        again = await then(f"/restore {post_id}", "sendPhoto")
        assert again.result["message_id"] != posted.result["message_id"] and in_channel() == [f"#{post_id}"]

        gone = await then("/ban @alice 7d", "deleteMessage")
        assert gone.params["message_id"] == str(again.result["message_id"]) and in_channel() == []
        await then("/unban @alice", "sendPhoto")
        async with asyncio.timeout(10):
            await core.drain()
        assert in_channel() == [f"#{post_id}"] and len(api.calls_of("sendPhoto", channel.id)) == 3
    finally:
        await running.close()
