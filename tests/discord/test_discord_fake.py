"""The fake Discord against the real discord.py: gateway, REST rules and the interaction cycle
(slash command, deferral, followup with a file, button, modal in a Label)."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator

import discord
import pytest
from discord import app_commands
from discord.http import HTTPClient, Route, handle_message_parameters

from tests.fakes.discord_api import FakeDiscord, check_outgoing, point_discord_py_at
from tests.fakes.discord_interactions import DEFERRED_MESSAGE, MODAL, UPDATE

CALLBACK = "POST /interactions/{interaction_id}/{interaction_token}/callback"
FOLLOWUP = "POST /webhooks/{webhook_id}/{webhook_token}"
SEND = "POST /channels/{channel_id}/messages"


class Bot(discord.Client):
    """A small app_commands bot, the shape the slash-command adapter will take."""

    def __init__(self, guild_id: int) -> None:
        super().__init__(intents=discord.Intents.default(), guild_ready_timeout=0.05)
        self.tree = app_commands.CommandTree(self)
        self.guild = discord.Object(guild_id)
        self.ready = asyncio.Event()
        self.answers: list[str] = []
        self.tree.command(name="imagine", description="Create an image", guild=self.guild)(self.imagine)
        self.tree.command(name="remix", description="Remix a post", guild=self.guild)(self.remix)
        self.tree.command(name="check", description="Check a picture", guild=self.guild)(self.check)

    async def setup_hook(self) -> None:
        await self.tree.sync(guild=self.guild)

    async def on_ready(self) -> None:
        self.ready.set()

    @app_commands.describe(prompt="What to draw", seed="Same seed, same picture")
    async def imagine(self, interaction: discord.Interaction, prompt: str, seed: int | None = None) -> None:
        await interaction.response.defer(thinking=True)
        picture = discord.File(io.BytesIO(b"\x89PNG fake"), filename="fox.png")
        view = discord.ui.View(timeout=None)
        view.add_item(discord.ui.Button(label="❤️ 0", custom_id="like 1"))
        await interaction.followup.send(f"{prompt} (seed {seed})", file=picture, view=view)

    async def remix(self, interaction: discord.Interaction, post: int) -> None:
        modal = discord.ui.Modal(title="Remix", custom_id=f"remix {post}")
        modal.add_item(discord.ui.Label(text="Prompt", component=discord.ui.TextInput(custom_id="prompt")))
        await interaction.response.send_modal(modal)

    async def check(self, interaction: discord.Interaction, image: discord.Attachment) -> None:
        data = await image.read()  # discord.py's own CDN fetch
        described = f"{image.filename} {image.size} {image.content_type} {image.ephemeral} {data!r}"
        await interaction.response.send_message(described, ephemeral=True)

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        data = interaction.data or {}
        if interaction.type is discord.InteractionType.component:
            self.answers.append(str(data.get("custom_id")))
            await interaction.response.edit_message(content="liked")
        elif interaction.type is discord.InteractionType.modal_submit:
            [label] = data["components"]  # type: ignore[typeddict-item]
            self.answers.append(f"{data['custom_id']}: {label['component']['value']}")  # type: ignore[index,typeddict-item]
            await interaction.response.send_message("remixing", ephemeral=True)


@pytest.fixture
async def client(discord_api: FakeDiscord, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Bot]:
    point_discord_py_at(discord_api, monkeypatch)
    bot = Bot(int(discord_api.guild_id))
    await bot.login(discord_api.token)
    task = asyncio.create_task(bot.connect(reconnect=False))
    async with asyncio.timeout(10):
        await bot.ready.wait()
    yield bot
    await bot.close()
    await task


async def test_discord_py_logs_in_gets_ready_and_syncs_its_commands(client: Bot, discord_api: FakeDiscord) -> None:
    assert client.user is not None and str(client.user.id) == discord_api.bot.id
    assert client.application_id == int(discord_api.app_id)
    [guild] = client.guilds
    assert {c.name for c in guild.text_channels} == {"gallery", "general"}
    [identify] = discord_api.gateway.identified
    assert identify["token"] == discord_api.token
    commands = {c["name"]: c for c in discord_api.commands[discord_api.guild_id]}
    assert [o["name"] for o in commands["imagine"]["options"]] == ["prompt", "seed"]


async def test_a_slash_command_is_deferred_then_answered_by_a_followup_with_a_file(
    client: Bot, discord_api: FakeDiscord
) -> None:
    alice = discord_api.add_user("alice")
    pushed = await discord_api.slash("imagine", alice, prompt="a fox", seed=42)
    followup = await discord_api.wait_for(FOLLOWUP)
    assert pushed.response_type == DEFERRED_MESSAGE
    message = pushed.original
    assert message is not None and message["content"] == "a fox (seed 42)"
    assert discord_api.attachment_bytes(message) == [b"\x89PNG fake"]
    assert message["attachments"][0]["filename"] == "fox.png"
    assert message in discord_api.in_channel(discord_api.general.id)  # a public deferral, so a public answer
    assert followup.files == {"files[0]": b"\x89PNG fake"}


async def test_a_button_press_reaches_the_bot_which_updates_the_message(client: Bot, discord_api: FakeDiscord) -> None:
    alice = discord_api.add_user("alice")
    await discord_api.slash("imagine", alice, prompt="a fox")
    await discord_api.wait_for(FOLLOWUP)
    [post] = discord_api.in_channel(discord_api.general.id)
    press = await discord_api.press(post, "like 1", alice)
    await discord_api.wait_for(CALLBACK, lambda c: c.params["interaction_id"] == press.id)
    assert client.answers == ["like 1"]
    assert press.response_type == UPDATE
    assert post["content"] == "liked"
    assert len(post["attachments"]) == 1  # an update without `attachments` keeps the picture


async def test_a_modal_answered_in_a_label_reaches_the_bot(client: Bot, discord_api: FakeDiscord) -> None:
    alice = discord_api.add_user("alice")
    opened = await discord_api.slash("remix", alice, post=7)
    await discord_api.wait_for(CALLBACK)
    assert opened.response_type == MODAL
    submitted = await discord_api.submit(opened, {"prompt": "in the rain"})
    await discord_api.wait_for(CALLBACK, lambda c: c.params["interaction_id"] == submitted.id)
    assert client.answers == ["remix 7: in the rain"]
    assert submitted.ephemeral and submitted.original not in discord_api.in_channel(discord_api.general.id)


async def test_an_attachment_option_is_resolved_and_served_from_the_cdn(client: Bot, discord_api: FakeDiscord) -> None:
    synced = {c["name"]: c for c in discord_api.commands[discord_api.guild_id]}
    assert [(o["name"], o["type"]) for o in synced["check"]["options"]] == [("image", 11)]
    alice = discord_api.add_user("alice")
    sent = discord_api.attachment(b"\x89PNG fake picture", "fox.png", "image/png")
    pushed = await discord_api.slash("check", alice, image=sent)
    await discord_api.wait_for(CALLBACK, lambda c: c.params["interaction_id"] == pushed.id)
    assert pushed.payload["data"]["options"] == [{"name": "image", "type": 11, "value": sent["id"]}]
    assert pushed.payload["data"]["resolved"]["attachments"] == {sent["id"]: sent}
    assert pushed.original["content"] == "fox.png 17 image/png True b'\\x89PNG fake picture'"
    assert discord_api.cdn_fetches == [sent["id"]]
    with pytest.raises(ValueError, match="pass an attachment"):
        await discord_api.slash("check", alice, image="fox.png")


async def test_an_unregistered_command_or_option_cannot_be_injected(client: Bot, discord_api: FakeDiscord) -> None:
    alice = discord_api.add_user("alice")
    with pytest.raises(ValueError, match="not registered"):
        await discord_api.slash("nope", alice)
    with pytest.raises(ValueError, match="no option 'colour'"):
        await discord_api.slash("imagine", alice, prompt="a fox", colour="red")


@pytest.fixture
async def http(discord_api: FakeDiscord, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[HTTPClient]:
    """discord.py's REST client alone, logged in to the fake."""
    point_discord_py_at(discord_api, monkeypatch)
    client = HTTPClient(asyncio.get_running_loop())
    await client.static_login(discord_api.token)
    yield client
    await client.close()


async def test_the_fake_refuses_what_discord_refuses(http: HTTPClient, discord_api: FakeDiscord) -> None:
    channel = int(discord_api.general.id)
    with pytest.raises(discord.HTTPException, match="2000 or fewer") as too_long:
        await http.send_message(channel, params=handle_message_parameters(content="x" * 2001))
    assert (too_long.value.status, too_long.value.code) == (400, 50035)
    view = discord.ui.View()
    view.add_item(discord.ui.Button(label="like", custom_id="x" * 101))
    with pytest.raises(discord.HTTPException, match="custom_id") as long_id:
        await http.send_message(channel, params=handle_message_parameters(content="hi", view=view))
    assert long_id.value.code == 50035
    with pytest.raises(discord.HTTPException, match="empty message"):
        await http.send_message(channel, params=handle_message_parameters(content=""))
    with pytest.raises(discord.NotFound, match="Unknown Channel"):
        await http.send_message(1, params=handle_message_parameters(content="hi"))
    with pytest.raises(discord.HTTPException, match="'name' is a required property"):
        await http.bulk_upsert_global_commands(int(discord_api.app_id), [{"description": "no name"}])
    with pytest.raises(discord.HTTPException, match="Invalid Recipient"):
        await http.request(Route("POST", "/users/@me/channels"), json={})
    with pytest.raises(discord.NotFound, match="404: Not Found"):
        await http.request(Route("GET", "/channels/{channel_id}/no-such-thing", channel_id=channel))
    assert discord_api.in_channel(discord_api.general.id) == []


async def test_fields_discord_does_not_know_are_ignored_but_listed(http: HTTPClient, discord_api: FakeDiscord) -> None:
    route = Route("POST", "/channels/{channel_id}/messages", channel_id=discord_api.general.id)
    await http.request(route, json={"content": "hi", "colour": 3})
    assert discord_api.unknown_fields == ["POST /channels/{channel_id}/messages: colour"]
    with pytest.raises(AssertionError, match="colour"):
        check_outgoing(discord_api)


async def test_a_429_carries_what_discord_py_needs_to_wait_it_out(http: HTTPClient, discord_api: FakeDiscord) -> None:
    discord_api.fail(SEND, "429", retry_after=0.1)
    await http.send_message(int(discord_api.general.id), params=handle_message_parameters(content="hi"))
    assert [c.status for c in discord_api.calls_of(SEND)] == [429, 200]  # not taken for a Cloudflare ban


async def test_an_interaction_acknowledged_late_or_twice_is_refused(client: Bot, discord_api: FakeDiscord) -> None:
    alice = discord_api.add_user("alice")
    discord_api.interactions.ack_window = 0.0
    await discord_api.slash("imagine", alice, prompt="a fox")
    late = await discord_api.wait_for(CALLBACK)
    assert late.status == 404  # discord.py raises NotFound 10062
    discord_api.interactions.ack_window = 3.0
    pushed = await discord_api.slash("remix", alice, post=1)
    await discord_api.wait_for(CALLBACK, lambda c: c.params["interaction_id"] == pushed.id)
    route = Route("POST", "/interactions/{i}/{t}/callback", i=pushed.id, t=pushed.token)
    with pytest.raises(discord.HTTPException, match="already been acknowledged"):
        await client.http.request(route, json={"type": 4, "data": {"content": "again"}})


async def test_discord_py_resumes_its_session_when_the_gateway_asks_it_to_reconnect(
    client: Bot, discord_api: FakeDiscord
) -> None:
    await discord_api.gateway.reconnect()
    async with asyncio.timeout(10):
        while not discord_api.gateway.sockets or not discord_api.gateway.resumed:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    [resumed] = discord_api.gateway.resumed
    assert resumed["session_id"] == discord_api.gateway.session_id
    assert len(discord_api.gateway.identified) == 1  # resumed, not identified again
    pushed = await discord_api.slash("remix", discord_api.add_user("alice"), post=3)
    await discord_api.wait_for(CALLBACK, lambda c: c.params["interaction_id"] == pushed.id)
    assert pushed.response_type == MODAL
