"""The fake Discord's gateway: HELLO, IDENTIFY -> READY and GUILD_CREATE, heartbeats, RESUME,
and dispatches pushed by the test (INTERACTION_CREATE). Frames are JSON text: discord.py asks for
zlib-stream compression but reads uncompressed text frames as they are.

Sharding as Discord does it: IDENTIFY may carry `shard: [id, count]` (an id outside the count is
closed with 4010), and a shard gets only its guilds, those with (guild_id >> 22) % count == id,
in READY, GUILD_CREATE and every guild event; events without a guild (DMs) go to shard 0."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from tests.fakes.discord_events import Json, guild, snowflake

if TYPE_CHECKING:
    from tests.fakes.discord_api import FakeDiscord

DISPATCH, HEARTBEAT, IDENTIFY, RESUME, RECONNECT, INVALID_SESSION, HELLO, HEARTBEAT_ACK = 0, 1, 2, 6, 7, 9, 10, 11
HEARTBEAT_INTERVAL_MS = 41250
AUTHENTICATION_FAILED = 4004
INVALID_SHARD = 4010
Shard = tuple[int, int]  # (id, count)


def owns(shard: Shard, guild_id: str | None) -> bool:
    """Whether a shard receives a guild's events (Discord's rule); DMs come on shard 0."""
    shard_id, count = shard
    if guild_id is None:
        return shard_id == 0
    return (int(guild_id) >> 22) % count == shard_id


class Gateway:
    def __init__(self, api: FakeDiscord) -> None:
        self.api = api
        self.sockets: list[web.WebSocketResponse] = []
        self.identified: list[Json] = []  # IDENTIFY payloads received
        self.resumed: list[Json] = []  # RESUME payloads received
        self.query: list[dict[str, str]] = []  # each connection's query (v, encoding, compress)
        self.session_id = snowflake()  # shard 0's session
        self.sessions: dict[str, Shard] = {self.session_id: (0, 1)}
        self.shards: dict[web.WebSocketResponse, Shard] = {}  # each identified socket's shard
        self.sequence = 0
        self.ready = asyncio.Event()  # READY and every GUILD_CREATE went out

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse(autoping=True)
        await socket.prepare(request)
        self.query.append(dict(request.query))
        await self._send(socket, {"op": HELLO, "d": {"heartbeat_interval": HEARTBEAT_INTERVAL_MS}})
        self.sockets.append(socket)
        try:
            async for frame in socket:
                if frame.type != WSMsgType.TEXT:
                    continue
                await self._received(socket, json.loads(frame.data))
        finally:
            with contextlib.suppress(ValueError):
                self.sockets.remove(socket)
            self.shards.pop(socket, None)
        return socket

    async def _received(self, socket: web.WebSocketResponse, message: Json) -> None:
        op, data = message.get("op"), message.get("d")
        if op == HEARTBEAT:
            await self._send(socket, {"op": HEARTBEAT_ACK})
        elif op == IDENTIFY:
            await self._identify(socket, data)
        elif op == RESUME:
            self.resumed.append(data)
            shard = self.sessions.get(str(data.get("session_id")))
            if shard is None or data.get("token") != self.api.token:
                await self._send(socket, {"op": INVALID_SESSION, "d": False})
                return
            self.shards[socket] = shard
            await self._dispatch(socket, "RESUMED", {})

    async def _identify(self, socket: web.WebSocketResponse, data: Json) -> None:
        self.identified.append(data)
        if data.get("token") != self.api.token:
            await socket.close(code=AUTHENTICATION_FAILED, message=b"Authentication failed.")
            return
        shard_id, count = data.get("shard") or (0, 1)
        if not 0 <= shard_id < count:
            await socket.close(code=INVALID_SHARD, message=b"Invalid shard.")
            return
        shard = (shard_id, count)
        session_id = self._session_of(shard)
        self.shards[socket] = shard
        guilds = [g for g in self.api.guilds if owns(shard, g)]
        ready = {
            "v": 10,
            "user": self.api.bot.json() | {"verified": True, "mfa_enabled": False, "flags": 0},
            "guilds": [{"id": g, "unavailable": True} for g in guilds],
            "session_id": session_id,
            "resume_gateway_url": self.api.gateway_url,
            "shard": [shard_id, count],
            "application": {"id": self.api.app_id, "flags": 0},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "geo_ordered_rtc_regions": [],
            "guild_join_requests": [],
            "user_settings": {},
        }
        await self._dispatch(socket, "READY", ready)
        for guild_id in guilds:
            channels = [c for c in self.api.channels.values() if c.guild_id == guild_id]
            await self._dispatch(
                socket, "GUILD_CREATE", guild(guild_id, self.api.guilds[guild_id], channels, self.api.bot)
            )
        self.ready.set()

    def _session_of(self, shard: Shard) -> str:
        if shard[0] == 0:
            self.sessions[self.session_id] = shard
            return self.session_id
        session_id = snowflake()
        self.sessions[session_id] = shard
        return session_id

    async def dispatch(self, event: str, data: Json) -> None:
        """Send an event to the connected shards that own its guild (a DM's: shard 0)."""
        guild_id = data.get("guild_id")
        owners = [s for s, shard in self.shards.items() if owns(shard, None if guild_id is None else str(guild_id))]
        if not owners:
            raise RuntimeError(f"no shard of the fake gateway's clients owns guild {guild_id}")
        for socket in owners:
            await self._dispatch(socket, event, data)

    async def reconnect(self) -> None:
        """Ask the clients to reconnect (op 7): discord.py then resumes its session."""
        for socket in list(self.sockets):
            await self._send(socket, {"op": RECONNECT, "d": None})
            await socket.close()

    async def _dispatch(self, socket: web.WebSocketResponse, event: str, data: Json) -> None:
        self.sequence += 1
        await self._send(socket, {"op": DISPATCH, "t": event, "s": self.sequence, "d": data})

    @staticmethod
    async def _send(socket: web.WebSocketResponse, payload: dict[str, Any]) -> None:
        await socket.send_str(json.dumps(payload))

    async def close(self) -> None:
        for socket in list(self.sockets):
            await socket.close()
