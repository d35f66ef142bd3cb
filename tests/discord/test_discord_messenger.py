"""The core's Messenger port on Discord, through the real discord.py against the fake Discord:
posts with their picture and buttons, edits that keep or drop the picture, DMs, and Discord's
failures (403 50007, 429, 500, no answer) as the core's delivery errors, also through the outbox."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import discord
import pytest
from PIL import Image as PILImage

from bots.discord.messenger import DiscordMessenger, dm_chat
from core import outbox
from core.app import Core
from core.messenger import DeliveryUncertain, RetryLater, Unreachable
from core.replies import Button, Image, Reply
from tests.fakes.discord_api import FakeDiscord, check_outgoing, point_discord_py_at
from tests.fakes.platform import deliveries

SEND = "POST /channels/{channel_id}/messages"
EDIT = "PATCH /channels/{channel_id}/messages/{message_id}"
CREATE_DM = "POST /users/@me/channels"
CAPTION = "#1 by @alice\na red fox in the snow\n🔁 Remix of #0 by @bob"


def post_buttons(likes: int) -> tuple[tuple[Button, ...], ...]:
    return (
        (Button(f"❤️ {likes}", "like 1"), Button("🔁 Remix", "remix 1"), Button("🎲 Variation", "vary 1")),
        (Button("➕ Follow @alice", "follow alice"),),
    )


@pytest.fixture
def picture(tmp_path: Path) -> Path:
    path = tmp_path / "02a93a.png"
    PILImage.new("RGB", (8, 8), "red").save(path)
    return path


@pytest.fixture
def picture_bytes(picture: Path) -> bytes:
    return picture.read_bytes()


def card(picture: Path, likes: int = 0) -> Reply:
    return Reply(text=CAPTION, image=Image(picture, CAPTION), buttons=post_buttons(likes), post_id=1)


@pytest.fixture
async def client(discord_api: FakeDiscord, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[discord.Client]:
    point_discord_py_at(discord_api, monkeypatch)
    bot = discord.Client(intents=discord.Intents(guilds=True), max_ratelimit_timeout=30)
    await bot.login(discord_api.token)
    bot.http.max_ratelimit_timeout = 0.5  # the constructor's floor is 30 s; a test waits less
    yield bot
    await bot.close()
    check_outgoing(discord_api)


@pytest.fixture
def unreachable() -> list[str]:
    return []


@pytest.fixture
def messenger(client: discord.Client, unreachable: list[str]) -> DiscordMessenger:
    async def mark(chat_id: str) -> None:
        unreachable.append(chat_id)

    return DiscordMessenger(client, timeout=2.0, mark_unreachable=mark)


async def test_a_post_is_an_embed_with_its_picture_attached_and_the_cores_buttons(
    messenger: DiscordMessenger, discord_api: FakeDiscord, picture: Path, picture_bytes: bytes
) -> None:
    ref = await messenger.send(discord_api.gallery.id, card(picture))
    [message] = discord_api.in_channel(discord_api.gallery.id)
    assert ref.message_id == message["id"] and ref.platform == "discord"
    assert message["content"] == ""
    [embed] = message["embeds"]
    assert (embed["title"], embed["description"]) == ("#1 by @alice", "a red fox in the snow\n🔁 Remix of #0 by @bob")
    assert discord_api.attachment_bytes(message) == [picture_bytes]
    rows = [[(b["label"], b["custom_id"]) for b in row["components"]] for row in message["components"]]
    assert rows == [
        [("❤️ 0", "like 1"), ("🔁 Remix", "remix 1"), ("🎲 Variation", "vary 1")],
        [("➕ Follow @alice", "follow alice")],
    ]


async def test_an_edit_keeps_the_picture_unless_the_reply_has_none(
    messenger: DiscordMessenger, discord_api: FakeDiscord, picture: Path
) -> None:
    ref = await messenger.send(discord_api.gallery.id, card(picture))
    [message] = discord_api.in_channel(discord_api.gallery.id)
    attachment = message["attachments"][0]["id"]

    assert await messenger.edit(ref, card(picture, likes=1)) == ref
    assert "attachments" not in discord_api.calls_of(EDIT)[-1].body  # type: ignore[operator]
    assert [a["id"] for a in message["attachments"]] == [attachment]
    assert message["components"][0]["components"][0]["label"] == "❤️ 1"

    restarted = DiscordMessenger(messenger.client, timeout=2.0)  # remembers nothing: asks Discord
    await restarted.edit(ref, card(picture, likes=2))
    assert discord_api.calls_of(EDIT)[-1].files == {}
    assert [a["id"] for a in message["attachments"]] == [attachment]

    await messenger.edit(ref, Reply(text="Deleted #1."))
    assert (message["content"], message["embeds"], message["attachments"], message["components"]) == (
        "Deleted #1.",
        [],
        [],
        [],
    )


async def test_a_progress_message_becomes_the_post_with_its_picture(
    messenger: DiscordMessenger, discord_api: FakeDiscord, picture: Path, picture_bytes: bytes
) -> None:
    ref = await messenger.send(discord_api.general.id, Reply(text="⏳ Queued, number 2 in line."))
    await messenger.edit(ref, Reply(text="🎨 Generating…"))
    assert await messenger.edit(ref, card(picture)) == ref
    [message] = discord_api.in_channel(discord_api.general.id)
    assert message["content"] == "" and message["embeds"][0]["title"] == "#1 by @alice"
    assert discord_api.attachment_bytes(message) == [picture_bytes]


async def test_a_person_is_reached_by_dm_whose_channel_is_created_once(
    messenger: DiscordMessenger, discord_api: FakeDiscord
) -> None:
    alice = discord_api.add_user("alice")
    await messenger.send(dm_chat(alice.id), Reply(text="Your digest"))
    ref = await messenger.send(dm_chat(alice.id), Reply(text="@bob liked #1", buttons=((Button("Show", "post 1"),),)))
    await messenger.edit(ref, Reply(text="@bob and @carol liked #1"))
    assert len(discord_api.calls_of(CREATE_DM)) == 1
    texts = [m["content"] for m in discord_api.in_channel(discord_api.dm_of(alice).id)]
    assert texts == ["Your digest", "@bob and @carol liked #1"]
    assert ref.chat_id == dm_chat(alice.id)


async def test_a_long_text_is_cut_to_discords_limit(messenger: DiscordMessenger, discord_api: FakeDiscord) -> None:
    await messenger.send(discord_api.general.id, Reply(text="word " * 1000))
    [message] = discord_api.in_channel(discord_api.general.id)
    assert len(message["content"]) <= 2000 and message["content"].endswith("…")


async def test_a_person_refusing_dms_is_unreachable_until_they_interact_again(
    messenger: DiscordMessenger, discord_api: FakeDiscord, unreachable: list[str]
) -> None:
    alice = discord_api.add_user("alice")
    discord_api.fail(SEND, "403")
    with pytest.raises(Unreachable, match="50007"):
        await messenger.send(dm_chat(alice.id), Reply(text="Your digest"))
    assert unreachable == [dm_chat(alice.id)]
    with pytest.raises(Unreachable):  # not asked again: 403s count toward Discord's ban
        await messenger.send(dm_chat(alice.id), Reply(text="Your digest"))
    assert len(discord_api.calls_of(SEND)) == 1
    messenger.reachable_again(dm_chat(alice.id))
    await messenger.send(dm_chat(alice.id), Reply(text="Welcome back"))
    assert [m["content"] for m in discord_api.in_channel(discord_api.dm_of(alice).id)] == ["Welcome back"]


async def test_a_short_429_or_a_500_is_waited_out_by_discord_py_and_sent_once(
    messenger: DiscordMessenger, discord_api: FakeDiscord
) -> None:
    discord_api.fail(SEND, "500")  # first: discord.py waits 1 s after it, then 1 + 2 s per earlier try
    discord_api.fail(SEND, "429", retry_after=0.2)
    await messenger.send(discord_api.general.id, Reply(text="hello"))
    assert [c.status for c in discord_api.calls_of(SEND)] == [500, 429, 200]
    assert len(discord_api.in_channel(discord_api.general.id)) == 1


async def test_a_long_429_is_retry_later(messenger: DiscordMessenger, discord_api: FakeDiscord) -> None:
    discord_api.fail(SEND, "429", retry_after=3.0)
    with pytest.raises(RetryLater) as raised:
        await messenger.send(discord_api.general.id, Reply(text="hello"))
    assert raised.value.retry_after == 3.0
    assert discord_api.in_channel(discord_api.general.id) == []


async def test_no_answer_is_uncertain(messenger: DiscordMessenger, discord_api: FakeDiscord) -> None:
    messenger.timeout = 0.5
    discord_api.fail(SEND, "hang")
    with pytest.raises(DeliveryUncertain):
        await messenger.send(discord_api.general.id, Reply(text="hello"))


async def queue_digest(core: Core, chat_id: str) -> None:
    async with core.sessions() as session:
        await outbox.add(
            session, key=f"digest:{chat_id}", platform="discord", chat_id=chat_id, kind="text", payload={"text": "hi"}
        )
        await session.commit()
    core.outbox.wake("discord")


async def drained(core: Core) -> None:
    async with asyncio.timeout(15):
        await core.drain()


async def test_the_outbox_pauses_on_a_429_then_delivers_once(
    core: Core, messenger: DiscordMessenger, discord_api: FakeDiscord
) -> None:
    alice = discord_api.add_user("alice")
    core.outbox.poll_seconds = 0.05
    core.register_messenger(messenger)
    discord_api.fail(SEND, "429", retry_after=1.0)
    await queue_digest(core, dm_chat(alice.id))
    await drained(core)
    [delivery] = await deliveries(core)
    assert delivery.status == "sent"
    first, second = discord_api.calls_of(SEND)
    assert (first.status, second.status) == (429, 200)
    assert second.at - first.at >= 0.9
    assert [m["content"] for m in discord_api.in_channel(discord_api.dm_of(alice).id)] == ["hi"]


async def test_the_outbox_never_repeats_a_send_left_without_an_answer(
    core: Core, messenger: DiscordMessenger, discord_api: FakeDiscord
) -> None:
    alice = discord_api.add_user("alice")
    messenger.timeout = 0.5
    core.outbox.poll_seconds = 0.05
    core.register_messenger(messenger)
    discord_api.fail(SEND, "hang")
    await queue_digest(core, dm_chat(alice.id))
    await drained(core)
    [delivery] = await deliveries(core)
    assert delivery.status == "uncertain"
    assert len(discord_api.calls_of(SEND)) == 1


async def test_the_outbox_skips_a_person_refusing_dms_and_goes_on(
    core: Core, messenger: DiscordMessenger, discord_api: FakeDiscord
) -> None:
    alice, bob = discord_api.add_user("alice"), discord_api.add_user("bob")
    core.outbox.poll_seconds = 0.05
    core.register_messenger(messenger)
    discord_api.fail(SEND, "403", channel_id=discord_api.dm_of(alice).id)
    await queue_digest(core, dm_chat(alice.id))
    await queue_digest(core, dm_chat(bob.id))
    await drained(core)
    assert {d.chat_id: d.status for d in await deliveries(core)} == {
        dm_chat(alice.id): "skipped",
        dm_chat(bob.id): "sent",
    }
    assert [m["content"] for m in discord_api.in_channel(discord_api.dm_of(bob).id)] == ["hi"]


async def test_the_client_must_hand_long_429s_back(client: discord.Client) -> None:
    client.http.max_ratelimit_timeout = None
    with pytest.raises(ValueError, match="max_ratelimit_timeout"):
        DiscordMessenger(client)


async def test_dms_are_paced_at_the_configured_rate(client: discord.Client, discord_api: FakeDiscord) -> None:
    messenger = DiscordMessenger(client, dm_per_second=5.0, timeout=2.0)
    people = [discord_api.add_user(f"reader{i}") for i in range(10)]
    for person in people:
        await messenger.send(dm_chat(person.id), Reply(text="Your digest"))
    sends = discord_api.calls_of(SEND)
    assert len(sends) == 10
    assert sends[-1].at - sends[0].at >= 0.9  # 5 at once, then 5 a second
