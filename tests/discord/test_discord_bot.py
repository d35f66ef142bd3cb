"""The real Discord bot (discord.py app_commands) against the fake Discord: slash commands synced
from the core's declarations, deferred answers, buttons, modals, the gallery and the outbox."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from bots.discord.app import DiscordBot, Tuning, serve
from core import commands
from core.actor import Actor
from core.app import Core
from core.config import Settings
from core.params import Param, ParamType
from tests.fakes.discord_api import FakeDiscord, check_outgoing, point_discord_py_at
from tests.fakes.discord_interactions import AUTOCOMPLETE_RESULT, DEFERRED_MESSAGE, EPHEMERAL, MESSAGE, MODAL, UPDATE
from tests.fakes.telegram_api import ChatInfo, FakeTelegramAPI, start_bot
from tests.fakes.telegram_api import User as TelegramUser
from tests.support import actor

CALLBACK = "POST /interactions/{interaction_id}/{interaction_token}/callback"
FOLLOWUP = "POST /webhooks/{webhook_id}/{webhook_token}"
EDIT_ORIGINAL = "PATCH /webhooks/{webhook_id}/{webhook_token}/messages/@original"
SEND = "POST /channels/{channel_id}/messages"
EDIT = "PATCH /channels/{channel_id}/messages/{message_id}"
DELETE = "DELETE /channels/{channel_id}/messages/{message_id}"
ROOT = Path(__file__).resolve().parents[2]
TELEGRAM_ALICE = TelegramUser(111, "Alice", "alice")
QUICK = Tuning(direct_seconds=2.0, ratelimit_timeout=0.5, guild_ready_timeout=0.05)


@dataclass
class Running:
    bot: DiscordBot
    stop: asyncio.Event
    task: asyncio.Task[None]

    async def close(self) -> None:
        self.stop.set()
        async with asyncio.timeout(15):
            await self.task


async def start(
    core: Core,
    settings: Settings,
    api: FakeDiscord,
    tuning: Tuning = QUICK,
    bot_class: type[DiscordBot] = DiscordBot,
    **changes: Any,
) -> Running:
    settings = settings.model_copy(
        update={"discord_bot_token": SecretStr(api.token), "discord_api_base_url": api.api_base} | changes
    )
    bot = bot_class(core, settings, tuning)
    stop = asyncio.Event()
    task = asyncio.create_task(serve(bot, api.token, stop))
    async with asyncio.timeout(10):
        while not bot.is_ready():
            if task.done():
                await task
            await asyncio.sleep(0.02)
    return Running(bot, stop, task)


@pytest.fixture
async def running(
    core: Core, settings: Settings, discord_api: FakeDiscord, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Running]:
    point_discord_py_at(discord_api, monkeypatch)
    bot = await start(core, settings, discord_api, discord_guild_id=int(discord_api.guild_id))
    yield bot
    await bot.close()
    check_outgoing(discord_api)


async def answered(api: FakeDiscord, pushed: Any) -> Any:
    await api.wait_for(CALLBACK, lambda c: c.params["interaction_id"] == pushed.id)
    return pushed


async def test_smoke(running: Running, discord_api: FakeDiscord) -> None:
    alice = discord_api.add_user("alice")
    pushed = await answered(discord_api, await discord_api.slash("start", alice))
    assert pushed.response_type == MESSAGE
    assert "@alice" in pushed.original["content"]


def components(message: dict[str, Any]) -> list[str]:
    return [c["custom_id"] for row in message.get("components", []) for c in row.get("components", [])]


def labels(message: dict[str, Any]) -> list[str]:
    return [c["label"] for row in message.get("components", []) for c in row.get("components", [])]


async def imagine(running: Running, api: FakeDiscord, user: Any, prompt: str, **options: Any) -> dict[str, Any]:
    """/imagine in the general channel, through to the finished post there; returns the post's message."""
    pushed = await answered(api, await api.slash("imagine", user, prompt=prompt, **options))
    assert pushed.ephemeral, pushed.original
    progress = await api.wait_for(SEND, lambda c: prompt in str(c.body))
    async with asyncio.timeout(30):
        await running.bot.core.drain()
    channel = progress.params["channel_id"]
    message = next(m for m in api.in_channel(channel) if prompt in str(m))
    async with asyncio.timeout(10):
        while not message.get("embeds"):  # noqa: ASYNC110  (the outbox's last edit makes it the post)
            await asyncio.sleep(0.02)
    return message


async def test_a_deferred_imagine_shows_its_progress_which_ends_as_the_post_with_picture_and_buttons(
    core: Core, settings: Settings, discord_api: FakeDiscord, monkeypatch: pytest.MonkeyPatch
) -> None:
    point_discord_py_at(discord_api, monkeypatch)
    slow = Tuning(direct_seconds=0.0, ratelimit_timeout=0.5, guild_ready_timeout=0.05)  # as if moderation took long
    running = await start(core, settings, discord_api, slow, discord_guild_id=int(discord_api.guild_id))
    try:
        alice = discord_api.add_user("alice")
        pushed = await answered(discord_api, await discord_api.slash("imagine", alice, prompt="a red fox", seed=42))
        assert pushed.response_type == DEFERRED_MESSAGE and pushed.ephemeral  # deferred before the core answered
        progress = await discord_api.wait_for(SEND)
        assert progress.params["channel_id"] == discord_api.general.id
        assert "Queued" in progress.body["content"] or "Generating" in progress.body["content"]
        await discord_api.wait_for(EDIT_ORIGINAL)
        assert "on its way" in pushed.original["content"]  # the thinking message, filled in for alice only
        async with asyncio.timeout(30):
            await core.drain()
        [post] = discord_api.in_channel(discord_api.general.id)
        [embed] = post["embeds"]
        assert "a red fox" in embed["description"] and "@alice" in embed["title"]
        assert discord_api.attachment_bytes(post)[0][:4] in (b"\x89PNG", b"\xff\xd8\xff\xe0", b"RIFF")
        post_id = embed["title"].split()[0].lstrip("#")
        assert components(post) == [
            f"like {post_id}",
            f"remix {post_id}",
            f"vary {post_id}",
            "follow alice",
            f"comment {post_id}",
            f"report {post_id}",
        ]
        assert post["content"] in ("", None)
    finally:
        await running.close()
    check_outgoing(discord_api)


async def test_an_imagine_is_acknowledged_before_its_progress_message_waits_out_a_rate_limit(
    running: Running, discord_api: FakeDiscord
) -> None:
    """The core answers at once, but the progress message is held up (here by a 429, in a burst by the
    channel's and the global rate limits): the interaction must not wait for it, or Discord drops it."""
    alice = discord_api.add_user("alice")
    discord_api.fail(SEND, "429", retry_after=0.4)
    pushed = await answered(discord_api, await discord_api.slash("imagine", alice, prompt="a slow fox"))
    progress = await discord_api.wait_for(SEND, lambda c: c.status == 200 and "a slow fox" in str(c.body))
    [callback] = [c for c in discord_api.calls_of(CALLBACK) if c.params["interaction_id"] == pushed.id]
    assert callback.at < progress.at - 0.3  # acknowledged before the limit ran out, not after the send
    assert pushed.response_type == MESSAGE and pushed.ephemeral and "on its way" in pushed.original["content"]
    async with asyncio.timeout(30):
        await running.bot.core.drain()


async def test_an_imagine_in_a_channel_closed_to_the_bot_shows_its_progress_in_the_answer_instead(
    running: Running, discord_api: FakeDiscord
) -> None:
    alice = discord_api.add_user("alice")
    discord_api.fail(SEND, "403", channel_id=discord_api.general.id)
    pushed = await answered(discord_api, await discord_api.slash("imagine", alice, prompt="a hidden fox"))
    await discord_api.wait_for(EDIT_ORIGINAL, lambda c: c.params["webhook_token"] == pushed.token)
    content = pushed.original["content"]
    assert "on its way" not in content and ("Queued" in content or "Generating" in content), content
    async with asyncio.timeout(30):
        await running.bot.core.drain()


async def test_a_like_press_is_a_notice_for_the_person_and_updates_the_card(
    running: Running, discord_api: FakeDiscord
) -> None:
    alice, bob = discord_api.add_user("alice"), discord_api.add_user("bob")
    post = await imagine(running, discord_api, alice, "a lighthouse")
    like = next(c for c in components(post) if c.startswith("like "))
    pressed = await answered(discord_api, await discord_api.press(post, like, bob))
    assert pressed.response_type == UPDATE
    assert labels(post)[0] == "❤️ 1"
    assert len(post["attachments"]) == 1  # the picture stays
    notice = await discord_api.wait_for(FOLLOWUP)
    assert notice.body["flags"] & EPHEMERAL and "liked" in notice.body["content"]
    assert notice.body["content"] not in str(discord_api.in_channel(discord_api.general.id))


async def test_remix_opens_a_modal_whose_answer_starts_the_job(running: Running, discord_api: FakeDiscord) -> None:
    alice, bob = discord_api.add_user("alice"), discord_api.add_user("bob")
    post = await imagine(running, discord_api, alice, "a castle on a hill")
    remix = next(c for c in components(post) if c.startswith("remix "))
    opened = await answered(discord_api, await discord_api.press(post, remix, bob))
    assert opened.response_type == MODAL
    assert opened.modal["custom_id"].startswith("ask|remix|")
    [label] = opened.modal["components"]
    assert label["type"] == 18 and "Describe your remix" in label["description"]
    assert label["component"]["placeholder"] == "a castle on a hill"
    submitted = await answered(discord_api, await discord_api.submit(opened, {"answer": "the castle at night"}))
    assert submitted.ephemeral and "on its way" in submitted.original["content"]
    async with asyncio.timeout(30):
        await running.bot.core.drain()
    remixed = next(m for m in discord_api.in_channel(discord_api.general.id) if "the castle at night" in str(m))
    assert "Remix of" in str(remixed["embeds"]) and "@alice" in str(remixed["embeds"])


async def test_a_button_sent_before_a_restart_still_works(
    core: Core, settings: Settings, discord_api: FakeDiscord, monkeypatch: pytest.MonkeyPatch
) -> None:
    point_discord_py_at(discord_api, monkeypatch)
    guild = {"discord_guild_id": int(discord_api.guild_id)}
    first = await start(core, settings, discord_api, **guild)
    alice, bob = discord_api.add_user("alice"), discord_api.add_user("bob")
    try:
        post = await imagine(first, discord_api, alice, "a harbour")
    finally:
        await first.close()
    from core.app import bootstrap

    again = await bootstrap(settings)  # a new process: a new core and a new client, the same database
    await again.start()
    second = await start(again, settings, discord_api, **guild)
    try:
        like = next(c for c in components(post) if c.startswith("like "))
        pressed = await answered(discord_api, await discord_api.press(post, like, bob))
        assert pressed.response_type == UPDATE and labels(post)[0] == "❤️ 1"
        remix = next(c for c in components(post) if c.startswith("remix "))
        opened = await answered(discord_api, await discord_api.press(post, remix, bob))
    finally:
        await second.close()
    third = await start(again, settings, discord_api, **guild)  # the modal outlives a restart too
    try:
        submitted = await answered(discord_api, await discord_api.submit(opened, {"answer": "a harbour at night"}))
        assert "on its way" in submitted.original["content"]
    finally:
        await third.close()
        await again.aclose()


async def test_mistakes_are_one_ephemeral_line_and_a_failure_the_apology(
    running: Running, discord_api: FakeDiscord, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.app import OOPS

    alice = discord_api.add_user("alice")
    unknown = await answered(discord_api, await discord_api.slash("follow", alice, handle="@nobody"))
    assert unknown.response_type == MESSAGE and unknown.ephemeral
    assert "nobody" in unknown.original["content"] and "\n" not in unknown.original["content"].strip()
    seed = await answered(discord_api, await discord_api.slash("imagine", alice, prompt="a fox", seed=-5))
    assert seed.ephemeral and "--seed" in seed.original["content"]

    async def broken(ctx: Any) -> list[Any]:
        raise RuntimeError("the database caught fire")

    monkeypatch.setitem(commands.COMMANDS, "quota", replace(commands.COMMANDS["quota"], handler=broken))
    failed = await answered(discord_api, await discord_api.slash("quota", alice))
    assert failed.response_type == MESSAGE and failed.ephemeral and failed.original["content"] == OOPS
    assert discord_api.in_channel(discord_api.general.id) == []  # nothing public at all


OPTION_TYPE = {ParamType.INT: 4, ParamType.BOOL: 5, ParamType.IMAGE: 11}


def expected_options(command: commands.Command) -> list[dict[str, Any]]:
    shown = [p for p in command.params if not p.hidden]
    return [
        {
            "name": p.name,
            "type": OPTION_TYPE.get(p.type, 3),
            "required": p.required,
            "choices": list(p.choices),
            "autocomplete": p.suggests,
            "description": p.description,
        }
        for p in shown
    ]


def synced_options(synced: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "name": o["name"],
            "type": o["type"],
            "required": o.get("required", False),
            "choices": [c["value"] for c in o.get("choices", [])],
            "autocomplete": o.get("autocomplete", False),
            "description": o["description"],
        }
        for o in synced.get("options", [])
    ]


async def test_every_listed_command_is_synced_with_the_options_its_declaration_gives(
    running: Running, discord_api: FakeDiscord
) -> None:
    synced = {c["name"]: c for c in discord_api.commands[discord_api.guild_id]}
    assert list(synced) == [c.name for c in commands.listed()]
    for command in commands.listed():
        assert synced[command.name]["description"] == command.summary
        assert synced_options(synced[command.name]) == expected_options(command), command.name
        assert set(synced[command.name]["contexts"]) == {0, 1, 2}  # servers, DMs with the bot, other DMs
        assert set(synced[command.name]["integration_types"]) == {0, 1}  # installed in a server or by a user
    [seed] = [o for o in synced["imagine"]["options"] if o["name"] == "seed"]
    assert (seed["min_value"], seed["max_value"]) == (0, 2**31 - 1)
    assert None not in discord_api.commands  # a development guild: nothing synced globally


async def test_a_changed_declaration_changes_what_is_synced(
    core: Core, settings: Settings, discord_api: FakeDiscord, monkeypatch: pytest.MonkeyPatch
) -> None:
    point_discord_py_at(discord_api, monkeypatch)
    follow = commands.COMMANDS["follow"]
    mood = Param("mood", ParamType.CHOICE, "how you feel about them", choices=("glad", "curious"))
    monkeypatch.setitem(
        commands.COMMANDS, "follow", replace(follow, summary="follow someone, gladly", params=(*follow.params, mood))
    )
    running = await start(core, settings, discord_api)  # no DISCORD_GUILD_ID: synced globally
    await running.close()
    synced = {c["name"]: c for c in discord_api.commands[None]}
    assert synced["follow"]["description"] == "follow someone, gladly"
    assert synced_options(synced["follow"])[-1] == {
        "name": "mood",
        "type": 3,
        "required": False,
        "choices": ["glad", "curious"],
        "autocomplete": False,
        "description": "how you feel about them",
    }


@pytest.fixture
async def quick_core(settings: Settings, database_url: str) -> AsyncIterator[Core]:
    """A core whose galleries refresh like counts within a fraction of a second."""
    from core.app import bootstrap
    from tests.conftest import empty_tables

    app = await bootstrap(settings.model_copy(update={"gallery_refresh_seconds": 0.3}))
    await app.start()
    try:
        yield app
    finally:
        await app.aclose()
        await empty_tables(database_url)


async def test_public_posts_go_to_the_gallery_where_like_counts_are_kept_up_to_date(
    quick_core: Core, settings: Settings, discord_api: FakeDiscord, monkeypatch: pytest.MonkeyPatch
) -> None:
    point_discord_py_at(discord_api, monkeypatch)
    gallery = discord_api.gallery.id
    running = await start(
        quick_core,
        settings,
        discord_api,
        discord_guild_id=int(discord_api.guild_id),
        discord_gallery_channel_id=int(gallery),
    )
    try:
        alice, bob = discord_api.add_user("alice"), discord_api.add_user("bob")
        await imagine(running, discord_api, alice, "a secret sketch", private=True)
        post = await imagine(running, discord_api, alice, "a harbour in the fog")
        await discord_api.wait_for(SEND, lambda c: c.params["channel_id"] == gallery)
        [published] = discord_api.in_channel(gallery)  # the private one is not published
        assert "a harbour in the fog" in str(published["embeds"]) and len(published["attachments"]) == 1
        assert components(published) == components(post)

        like = next(c for c in components(post) if c.startswith("like "))
        await answered(discord_api, await discord_api.press(post, like, bob))  # liked where it was made
        await discord_api.wait_for(EDIT, lambda c: c.params["channel_id"] == gallery)
        assert labels(published)[0] == "❤️ 1" and len(published["attachments"]) == 1
    finally:
        await running.close()
    check_outgoing(discord_api)


async def test_a_hidden_posts_gallery_message_is_deleted_and_a_restored_one_posted_again(
    core: Core, settings: Settings, discord_api: FakeDiscord, monkeypatch: pytest.MonkeyPatch
) -> None:
    point_discord_py_at(discord_api, monkeypatch)
    gallery = discord_api.gallery.id
    running = await start(
        core, settings, discord_api, discord_guild_id=int(discord_api.guild_id), discord_gallery_channel_id=int(gallery)
    )
    admin = Actor("console", "admin", chat_id="chat-admin")  # ADMINS names "admin" there

    async def then(line: str, route: str) -> None:
        mark = len(discord_api.calls_of(route))
        await core.handle(admin, line)
        core.outbox.wake()
        await discord_api.wait_for(
            route, lambda c: c.params["channel_id"] == gallery and discord_api.calls_of(route).index(c) >= mark
        )

    try:
        alice = discord_api.add_user("alice")
        await imagine(running, discord_api, alice, "a harbour to hide")
        await discord_api.wait_for(SEND, lambda c: c.params["channel_id"] == gallery)
        [published] = discord_api.in_channel(gallery)
        post_id = next(c for c in components(published) if c.startswith("like ")).split()[1]
        await then(f"/hide {post_id}", DELETE)
        assert discord_api.in_channel(gallery) == []
        await then(f"/restore {post_id}", SEND)
        [again] = discord_api.in_channel(gallery)
        assert again["id"] != published["id"] and "a harbour to hide" in str(again["embeds"])
        await then("/ban @alice", DELETE)
        assert discord_api.in_channel(gallery) == []
        await then("/unban @alice", SEND)
        [back] = discord_api.in_channel(gallery)
        assert f"like {post_id}" in components(back)
    finally:
        await running.close()
    check_outgoing(discord_api)


async def test_a_private_image_asked_for_in_a_server_is_shown_in_the_persons_dms(
    running: Running, discord_api: FakeDiscord
) -> None:
    alice = discord_api.add_user("alice")
    post = await imagine(running, discord_api, alice, "a diary page", private=True)
    assert post["channel_id"] == discord_api.dm_of(alice).id
    assert discord_api.in_channel(discord_api.general.id) == []


async def test_digests_reach_people_of_a_server_by_dm_and_a_closed_dm_does_not_stop_the_run(
    running: Running, discord_api: FakeDiscord
) -> None:
    from datetime import timedelta

    from core.feed.operators import digest_now
    from core.models import utcnow
    from tests.fakes.platform import add_post

    closed, reader = discord_api.add_user("closed"), discord_api.add_user("reader")
    await running.bot.core.handle(actor("alice"), "/start")
    for person in (closed, reader):  # both only ever wrote in the server's channel
        await answered(discord_api, await discord_api.slash("follow", person, handle="alice"))
    await add_post(running.bot.core, "alice", utcnow() - timedelta(hours=1), likes=2)
    discord_api.fail(SEND, "403", channel_id=discord_api.dm_of(closed).id)  # 50007: closed DMs

    stats = await digest_now(running.bot.core)
    assert stats.queued == 2
    async with asyncio.timeout(30):
        await running.bot.core.drain()
    [digest] = discord_api.in_channel(discord_api.dm_of(reader).id)
    assert len(digest["attachments"]) == 1
    assert discord_api.in_channel(discord_api.dm_of(closed).id) == []
    assert [c.status for c in discord_api.calls_of(SEND) if c.params["channel_id"] == discord_api.dm_of(closed).id] == [
        403
    ]  # not asked again


async def test_a_429_is_waited_out_and_the_message_sent_once(running: Running, discord_api: FakeDiscord) -> None:
    alice = discord_api.add_user("alice")
    discord_api.fail(SEND, "429", retry_after=0.2)
    post = await imagine(running, discord_api, alice, "a storm at sea")
    assert [c.status for c in discord_api.calls_of(SEND)] == [429, 200]
    assert [m["id"] for m in discord_api.in_channel(discord_api.general.id)] == [post["id"]]


async def test_one_network_a_post_made_on_either_platform_is_in_both_galleries(
    core: Core, settings: Settings, discord_api: FakeDiscord, api: FakeTelegramAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    point_discord_py_at(discord_api, monkeypatch)
    channel = ChatInfo(-100777, "channel", "Gallery")
    api.chats[channel.id] = channel
    gallery = discord_api.gallery.id
    telegram = await start_bot(core, settings, api, telegram_gallery_chat_id=str(channel.id))
    running = await start(
        core, settings, discord_api, discord_guild_id=int(discord_api.guild_id), discord_gallery_channel_id=int(gallery)
    )
    try:
        api.say(TELEGRAM_ALICE, "/imagine a lantern made on telegram")
        await discord_api.wait_for(SEND, lambda c: c.params["channel_id"] == gallery, seconds=30)
        [from_telegram] = discord_api.in_channel(gallery)
        assert "a lantern made on telegram" in str(from_telegram["embeds"])

        await imagine(running, discord_api, discord_api.add_user("bob"), "a kite made on discord")
        posted = await api.wait_for(
            "sendPhoto", lambda c: c.chat_id == str(channel.id) and "a kite made on discord" in c.params["caption"]
        )
        assert "@bob" in posted.params["caption"]
    finally:
        await running.close()
        await telegram.close()


async def test_one_process_serves_telegram_and_discord_and_stops_cleanly_on_sigterm(
    settings: Settings, database_url: str, discord_api: FakeDiscord, api: FakeTelegramAPI, tmp_path: Path
) -> None:
    from tests.conftest import empty_tables

    env = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG", "LC_ALL"}}
    env.update(
        PYTHONPATH=str(ROOT),
        DATABASE_URL=database_url,
        MEDIA_DIR=str(settings.media_dir),
        IMAGE_BACKEND="local",
        TELEGRAM_BOT_TOKEN=api.token,
        TELEGRAM_API_BASE_URL=api.url,
        DISCORD_BOT_TOKEN=discord_api.token,
        DISCORD_API_BASE_URL=discord_api.api_base,
        DISCORD_GUILD_ID=discord_api.guild_id,
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bots", cwd=tmp_path, env=env, stderr=asyncio.subprocess.PIPE
    )
    try:
        async with asyncio.timeout(30):
            while discord_api.guild_id not in discord_api.commands or not discord_api.gateway.identified:
                assert process.returncode is None, "python -m bots stopped at start-up"
                await asyncio.sleep(0.05)
        pushed = await discord_api.slash("start", discord_api.add_user("bob"))
        await discord_api.wait_for(CALLBACK, lambda c: c.params["interaction_id"] == pushed.id, seconds=15)
        assert "@bob" in pushed.original["content"]
        api.say(TELEGRAM_ALICE, "/start")
        answer = await api.wait_for("sendMessage", lambda c: c.chat_id == str(TELEGRAM_ALICE.id))
        assert "@alice" in answer.params["text"]
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(20):
            _, stderr = await process.communicate()
        await empty_tables(database_url)
    log = stderr.decode()
    assert process.returncode == 0, log
    assert "Traceback" not in log and "stopping the Discord bot" in log
    assert discord_api.token not in log and api.token not in log


async def test_handles_and_own_posts_are_completed_as_they_are_typed(
    running: Running, discord_api: FakeDiscord
) -> None:
    bob = discord_api.add_user("bob")
    for handle in ("alice", "albert", "carol"):
        await running.bot.core.handle(actor(handle), "/start")
    typing = await answered(discord_api, await discord_api.autocomplete("follow", bob, "handle", handle="al"))
    assert typing.response_type == AUTOCOMPLETE_RESULT
    assert typing.response["choices"] == [{"name": "@albert", "value": "albert"}, {"name": "@alice", "value": "alice"}]
    post = await imagine(running, discord_api, bob, "a paper boat")
    post_id = post["embeds"][0]["title"].split()[0].lstrip("#")
    typing = await answered(discord_api, await discord_api.autocomplete("like", bob, "post", post=""))
    assert typing.response["choices"] == [{"name": f"#{post_id} a paper boat", "value": post_id}]
    liked = await answered(discord_api, await discord_api.slash("like", bob, post=post_id))
    assert "You liked" in str(liked.original)
