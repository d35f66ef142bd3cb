"""Discord sharding: DISCORD_SHARD_COUNT / DISCORD_SHARD_IDS split the gateway between clients
(processes, in a deployment), each getting only its shards' guilds, against the fake gateway that
routes a guild's events to shard (guild_id >> 22) % count as Discord does."""

from __future__ import annotations

import asyncio
from typing import Any

import discord
import pytest
from pydantic import SecretStr

from bots.discord.app import DiscordBot
from core.app import Core, bootstrap
from core.config import Settings
from tests.discord.test_discord_bot import CALLBACK, QUICK, SEND, Running, start
from tests.fakes.discord_api import FakeDiscord, point_discord_py_at
from tests.fakes.discord_gateway import owns


class Recording(DiscordBot):
    """The real bot, noting which interactions reached it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seen: list[int] = []

    async def command(self, interaction: discord.Interaction, name: str, values: dict[str, Any]) -> None:
        self.seen.append(interaction.id)
        await super().command(interaction, name, values)


async def answered_once(api: FakeDiscord, pushed: Any) -> None:
    await api.wait_for(CALLBACK, lambda c: c.params["interaction_id"] == pushed.id, seconds=10)
    await asyncio.sleep(0.2)  # a second answer, from a client that should not have had it, would be here
    calls = [c for c in api.calls_of(CALLBACK) if c.params["interaction_id"] == pushed.id]
    assert len(calls) == 1 and calls[0].status < 300, calls


async def test_two_clients_with_shard_ids_0_and_1_of_2_each_get_and_answer_only_their_guilds(
    core: Core, settings: Settings, discord_api: FakeDiscord, monkeypatch: pytest.MonkeyPatch
) -> None:
    point_discord_py_at(discord_api, monkeypatch)
    channel = {n: discord_api.add_channel(f"room{n}", discord_api.add_guild(f"G{n}", shard=(n, 2))) for n in (0, 1)}
    other_core = await bootstrap(settings)  # another process, as far as the bots can tell
    await other_core.start()
    bots: list[Running] = []
    try:
        for n, own_core in enumerate((core, other_core)):
            shard_settings = settings.model_copy(update={"discord_shard_count": 2, "discord_shard_ids": (n,)})
            bots.append(await start(own_core, shard_settings, discord_api, QUICK, bot_class=Recording))
        for n in (0, 1):
            guilds = {str(g.id) for g in bots[n].bot.guilds}
            assert channel[n].guild_id in guilds and channel[1 - n].guild_id not in guilds
            assert guilds == {g for g in discord_api.guilds if owns((n, 2), g)}
        pushed = {}
        for n in (0, 1):
            pushed[n] = await discord_api.slash("start", discord_api.add_user(f"user{n}"), channel[n])
            await answered_once(discord_api, pushed[n])
            assert f"@user{n}" in pushed[n].original["content"]
        assert [b.bot.seen for b in bots] == [[int(pushed[0].id)], [int(pushed[1].id)]]  # type: ignore[attr-defined]
        shards = sorted(tuple(i["shard"]) for i in discord_api.gateway.identified)
        assert shards == [(0, 2), (1, 2)]
    finally:
        for running in bots:
            await running.close()
        await other_core.aclose()


async def test_without_shard_settings_one_client_connects_every_shard_discord_recommends(
    core: Core, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with FakeDiscord(shards=2) as api:
        point_discord_py_at(api, monkeypatch)
        channel = {n: api.add_channel(f"room{n}", api.add_guild(f"G{n}", shard=(n, 2))) for n in (0, 1)}
        running = await start(core, settings, api, QUICK)
        try:
            assert sorted(tuple(i["shard"]) for i in api.gateway.identified) == [(0, 2), (1, 2)]
            for n in (0, 1):
                pushed = await api.slash("start", api.add_user(f"user{n}"), channel[n])
                await answered_once(api, pushed)
        finally:
            await running.close()


async def test_the_fake_gateway_closes_a_shard_id_outside_its_count(
    discord_api: FakeDiscord, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What Discord does (close code 4010), so a wrong split shows in the tests as it would live."""
    point_discord_py_at(discord_api, monkeypatch)
    client = discord.AutoShardedClient(intents=discord.Intents(guilds=True), shard_count=1, shard_ids=[1])
    await client.login(discord_api.token)
    try:
        with pytest.raises(discord.ConnectionClosed) as closed:
            async with asyncio.timeout(10):
                await client.connect(reconnect=False)
        assert closed.value.code == 4010
    finally:
        await client.close()


async def queue_text(core: Core, chat_id: str, text: str) -> None:
    from core import outbox

    async with core.sessions() as session:
        await outbox.add(
            session, key=f"t-{text}", platform="discord", chat_id=chat_id, kind="text", payload={"text": text}
        )
        await session.commit()
    core.outbox.wake("discord")


async def test_sending_only_delivers_the_outbox_over_rest_without_a_gateway_connection(
    core: Core, settings: Settings, discord_api: FakeDiscord, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The senders role without the messengers role (python -m bots serve --roles senders)."""
    from bots.discord.app import run_discord

    point_discord_py_at(discord_api, monkeypatch)
    settings = settings.model_copy(
        update={"discord_bot_token": SecretStr(discord_api.token), "discord_api_base_url": discord_api.api_base}
    )
    stop = asyncio.Event()
    task = asyncio.create_task(run_discord(core, settings, stop, QUICK, receive=False))
    try:
        await queue_text(core, discord_api.general.id, "a note for the channel")
        sent = await discord_api.wait_for(SEND, seconds=10)
        assert sent.status == 200 and sent.body["content"] == "a note for the channel"  # type: ignore[index]
    finally:
        stop.set()
        async with asyncio.timeout(10):
            await task
    assert discord_api.gateway.query == [] and discord_api.gateway.identified == []  # never connected
    assert not discord_api.calls_of("GET /gateway/bot") and not discord_api.calls_of("GET /gateway")
    assert not discord_api.calls_of("PUT /applications/{application_id}/commands")  # a front-end's job
