"""The Discord bot: slash commands synced from the core's declarations, buttons and modal answers
turned into core calls, and the messenger the core sends through on its own."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

import aiohttp
import discord
import yarl
from discord import app_commands

from bots.discord import buttons, uploads
from bots.discord.commands import slash_commands
from bots.discord.exchange import Exchange, actor_of
from bots.discord.messenger import PLATFORM, DiscordMessenger, dm_chat
from core.app import Core
from core.config import Settings
from core.replies import Reply

log = logging.getLogger(__name__)

NOT_FETCHED = "I could not fetch your attachment from Discord. Please try again."


@dataclass(frozen=True, slots=True)
class Tuning:
    """Timings that tests shorten; the defaults suit the real Discord."""

    # A core answer this quick is the response itself; else the interaction is deferred. Short, because under
    # a burst the event loop is late too, and a deferral sent after Discord's 3 s is lost; at 0.1 s a burst of
    # 100 commands is acknowledged with a p99 of 0.2 s on a quiet machine, at 0.25 s of 0.43 s (bench/DISCORD.md).
    # A command alone takes the core a few milliseconds, so it is still answered directly.
    direct_seconds: float = 0.1
    ratelimit_timeout: float = 30.0  # 429s up to this long are waited out by discord.py (its floor is 30)
    guild_ready_timeout: float = 2.0
    start_retry_seconds: float = 10.0


def messenger_of(client: discord.Client, core: Core, settings: Settings) -> DiscordMessenger:
    return DiscordMessenger(
        client,
        dm_per_second=settings.discord_dm_per_second,
        mark_unreachable=lambda chat_id: core.mark_unreachable(PLATFORM, chat_id),
    )


def register_with_core(core: Core, settings: Settings, messenger: DiscordMessenger) -> None:
    """The core sends progress edits, gallery posts and digests on its own, through the messenger."""
    core.register_messenger(messenger)
    if settings.discord_gallery_channel_id:
        core.register_gallery(PLATFORM, str(settings.discord_gallery_channel_id))


def rest_client(tuning: Tuning) -> discord.Client:
    """A client that only ever speaks REST: `login` sets up its HTTP session (GET users/@me and the
    application) and nothing opens the gateway, which only `connect` would."""
    client = discord.Client(intents=discord.Intents.none(), max_ratelimit_timeout=max(30.0, tuning.ratelimit_timeout))
    client.http.max_ratelimit_timeout = tuning.ratelimit_timeout
    return client


class DiscordBot(discord.AutoShardedClient):
    """Sharded even in one process: with DISCORD_SHARD_COUNT / DISCORD_SHARD_IDS unset it connects
    every shard Discord recommends, else only this process's share of the deployment's shards."""

    def __init__(self, core: Core, settings: Settings, tuning: Tuning = Tuning()) -> None:
        # Slash commands and buttons arrive as interactions: no privileged intent, no message content.
        super().__init__(
            intents=discord.Intents(guilds=True),
            max_ratelimit_timeout=max(30.0, tuning.ratelimit_timeout),
            guild_ready_timeout=tuning.guild_ready_timeout,
            **settings.discord_shards.client_kwargs(),  # type: ignore[arg-type]
        )
        self.http.max_ratelimit_timeout = tuning.ratelimit_timeout
        self.core = core
        self.settings = settings
        self.tuning = tuning
        self.tree = app_commands.CommandTree(self)
        self.messenger = messenger_of(self, core, settings)

    async def setup_hook(self) -> None:
        if self.settings.discord_api_base_url:
            # A plain Client connects to Discord's built-in gateway URL, not the one the API names.
            _, url, *_ = await self.http.get_bot_gateway()
            discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(url)
        self.add_dynamic_items(buttons.Action)
        await self.sync_commands()
        register_with_core(self.core, self.settings, self.messenger)

    async def sync_commands(self) -> None:
        """To DISCORD_GUILD_ID when set (at once, for development), else globally (may take a while)."""
        guild_id = self.settings.discord_guild_id
        guild = discord.Object(guild_id) if guild_id else None
        for command in slash_commands(self.command, self.suggest):
            self.tree.add_command(command, guild=guild, override=True)
        try:
            synced = await self.tree.sync(guild=guild)
            log.info("synced %d slash commands %s", len(synced), f"to guild {guild_id}" if guild else "globally")
        except discord.HTTPException as exc:  # the bot still answers the commands synced before
            log.warning("could not sync the slash commands: %s", exc)

    # --- interactions -------------------------------------------------------------------------

    def _exchange(self, interaction: discord.Interaction) -> Exchange:
        # Someone who interacts can be reached again, even after closing their DMs once.
        self.messenger.reachable_again(dm_chat(interaction.user.id))
        return Exchange(interaction, self.core, self.messenger)

    async def command(self, interaction: discord.Interaction, name: str, values: dict[str, Any]) -> None:
        exchange = self._exchange(interaction)
        exchange.progress_by_dm = bool(values.get("private")) and not exchange.actor.private
        call = self._invoke(exchange, name, values, str(interaction.id))
        await exchange.run(call, self.tuning.direct_seconds)

    async def _invoke(self, exchange: Exchange, name: str, values: dict[str, Any], request_id: str) -> list[Reply]:
        """The core's answer; attachments are fetched first, inside the call, so a slow download is
        covered by the exchange's deferral."""
        limit = self.settings.upload_max_mb
        try:
            typed = {
                key: await uploads.fetch(value, limit) if isinstance(value, discord.Attachment) else value
                for key, value in values.items()
            }
        except uploads.FetchFailed as exc:
            log.warning("could not fetch an attachment of interaction %s: %s", request_id, exc)
            return [Reply(text=NOT_FETCHED, error=True)]
        return await self.core.invoke(exchange.actor, name, typed, request_id=request_id)

    async def pressed(self, interaction: discord.Interaction, action: str) -> None:
        exchange = self._exchange(interaction)
        call = self.core.press(exchange.actor, action, request_id=f"press:{interaction.id}")
        await exchange.run(call, self.tuning.direct_seconds)

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        """Modal answers, here rather than in the modal, so that they count after a restart too."""
        if interaction.type is not discord.InteractionType.modal_submit:
            return
        data: Any = interaction.data or {}
        ask = buttons.ask_of(str(data.get("custom_id", "")))
        if ask is None:
            return
        exchange = self._exchange(interaction)
        call = self.core.answer(exchange.actor, ask, buttons.answer_of(data), request_id=f"modal:{interaction.id}")
        await exchange.run(call, self.tuning.direct_seconds)

    async def suggest(
        self, interaction: discord.Interaction, name: str, param: str, prefix: str
    ) -> list[app_commands.Choice[str]]:
        try:
            found = await self.core.suggest(actor_of(interaction), name, param, prefix)
        except Exception:  # completions are a nicety: an empty list, never an error shown
            log.exception("suggestions for /%s %s failed", name, param)
            return []
        return [app_commands.Choice(name=s.label, value=s.value) for s in found]


async def _login(bot: discord.Client, token: str, stop: asyncio.Event, tuning: Tuning) -> bool:
    """Log in, retrying while Discord cannot be reached. False when stopping or the token is bad."""
    while not stop.is_set():
        try:
            await bot.login(token)
            return True
        except discord.LoginFailure:
            log.error("Discord refused DISCORD_BOT_TOKEN; the Discord bot is not running")
            return False
        except (aiohttp.ClientError, OSError, discord.HTTPException) as exc:
            log.warning("cannot reach Discord (%s); trying again in %.0f s", exc, tuning.start_retry_seconds)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), tuning.start_retry_seconds)
    return False


def point_at(base_url: str | None) -> None:
    """DISCORD_API_BASE_URL: a proxy or a test server in Discord's place (discord.py keeps the base
    in a class attribute, so it holds for the whole process)."""
    if base_url:
        discord.http.Route.BASE = base_url.rstrip("/")


async def run_discord(
    core: Core, settings: Settings, stop: asyncio.Event, tuning: Tuning = Tuning(), *, receive: bool = True
) -> None:
    """Run until `stop` is set, reconnecting to the gateway as discord.py does. Without `receive`
    (a process with the senders role only) no gateway connection: the outbox is sent over REST."""
    if settings.discord_bot_token is None:
        raise ValueError("DISCORD_BOT_TOKEN is not set")
    point_at(settings.discord_api_base_url)
    token = settings.discord_bot_token.get_secret_value()
    if receive:
        await serve(DiscordBot(core, settings, tuning), token, stop)
    else:
        await send_only(core, settings, token, stop, tuning)


async def send_only(core: Core, settings: Settings, token: str, stop: asyncio.Event, tuning: Tuning) -> None:
    client = rest_client(tuning)
    try:
        if not await _login(client, token, stop, tuning):
            return
        register_with_core(core, settings, messenger_of(client, core, settings))
        log.info("Discord bot %s is running (sending only, no gateway connection)", client.user)
        await stop.wait()
    finally:
        log.info("stopping the Discord bot")
        await client.close()


async def serve(bot: DiscordBot, token: str, stop: asyncio.Event) -> None:
    connected: asyncio.Task[None] | None = None
    try:
        if not await _login(bot, token, stop, bot.tuning):
            return
        connected = asyncio.create_task(bot.connect(reconnect=True))
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({connected, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if connected.done() and not connected.cancelled() and connected.exception() is not None:
            log.error("the Discord bot stopped: %s", connected.exception())
    finally:
        log.info("stopping the Discord bot")
        await bot.close()
        if connected is not None:  # it ends once the client is closed
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connected, 10)
