"""The fake Discord's gateway: HELLO, IDENTIFY -> READY and GUILD_CREATE, heartbeats, RESUME,
and dispatches pushed by the test (INTERACTION_CREATE). Frames are JSON text: discord.py asks for
zlib-stream compression but reads uncompressed text frames as they are."""

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


class Gateway:
    def __init__(self, api: FakeDiscord) -> None:
        self.api = api
        self.sockets: list[web.WebSocketResponse] = []
        self.identified: list[Json] = []  # IDENTIFY payloads received
        self.resumed: list[Json] = []  # RESUME payloads received
        self.query: list[dict[str, str]] = []  # each connection's query (v, encoding, compress)
        self.session_id = snowflake()
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
        return socket

    async def _received(self, socket: web.WebSocketResponse, message: Json) -> None:
        op, data = message.get("op"), message.get("d")
        if op == HEARTBEAT:
            await self._send(socket, {"op": HEARTBEAT_ACK})
        elif op == IDENTIFY:
            await self._identify(socket, data)
        elif op == RESUME:
            self.resumed.append(data)
            if data.get("session_id") != self.session_id or data.get("token") != self.api.token:
                await self._send(socket, {"op": INVALID_SESSION, "d": False})
                return
            await self._dispatch(socket, "RESUMED", {})

    async def _identify(self, socket: web.WebSocketResponse, data: Json) -> None:
        self.identified.append(data)
        if data.get("token") != self.api.token:
            await socket.close(code=AUTHENTICATION_FAILED, message=b"Authentication failed.")
            return
        ready = {
            "v": 10,
            "user": self.api.bot.json() | {"verified": True, "mfa_enabled": False, "flags": 0},
            "guilds": [{"id": self.api.guild_id, "unavailable": True}],
            "session_id": self.session_id,
            "resume_gateway_url": self.api.gateway_url,
            "shard": [0, 1],
            "application": {"id": self.api.app_id, "flags": 0},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "geo_ordered_rtc_regions": [],
            "guild_join_requests": [],
            "user_settings": {},
        }
        await self._dispatch(socket, "READY", ready)
        channels = [c for c in self.api.channels.values() if c.guild_id == self.api.guild_id]
        await self._dispatch(socket, "GUILD_CREATE", guild(self.api.guild_id, "Imagenet test", channels, self.api.bot))
        self.ready.set()

    async def dispatch(self, event: str, data: Json) -> None:
        """Send an event to every connected client (there is normally one)."""
        if not self.sockets:
            raise RuntimeError("no client is connected to the fake gateway")
        for socket in list(self.sockets):
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
