"""A fake Discord: REST under /api/v10 and a gateway websocket on 127.0.0.1, for the real discord.py.

    async with FakeDiscord() as api:
        point_discord_py_at(api, monkeypatch)         # Route.BASE and the gateway URL
        client = discord.Client(intents=discord.Intents.default()); await client.login(api.token) ...
        api.fail("POST /channels/{channel_id}/messages", "429", retry_after=0.5)
        press = await api.press(message, "like 1")    # INTERACTION_CREATE for a button
        await api.wait_for("POST /interactions/{interaction_id}/{interaction_token}/callback")

Routes are Discord's own (tests/fakes/discord_openapi.json, cut from its OpenAPI description):
an unknown one answers 404, a wrong method 405, a body against the schema 400 with code 50035,
as Discord does. On top of the schema the fake checks what Discord checks and the description
leaves out (a bot's content up to 2,000 characters, 6,000 characters of embeds, no empty message).
Discord ignores body fields it does not know, and so does the fake, but it lists them in
`unknown_fields` so a test can insist there are none.

Served: gateway, gateway/bot, users/@me, users/@me/channels (create DM), applications/{id}/commands
and guild commands (bulk overwrite, list), channel messages (send JSON or multipart with files[n]
and payload_json, get, edit, delete), interaction callbacks (4, 5, 6, 7, 8, 9), followups and
@original (post, get, edit, delete). Any other Discord route answers 501 so a test notices.

Failures, per route key ("POST /channels/{channel_id}/messages") and optionally per channel:
`fail(route, kind, times=1, retry_after=1.0, channel_id=None)` with kind "429" (with `Via`, as
Discord's own; discord.py takes a 429 without it for a Cloudflare ban), "403" (50007, cannot send
messages to this user), "500", "hang" (no answer until the server stops: a read timeout).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from tests.fakes import discord_routes, discord_spec
from tests.fakes.discord_events import DM, GUILD_TEXT, Channel, Json, User, now_iso, snowflake, snowflake_on
from tests.fakes.discord_gateway import Gateway
from tests.fakes.discord_interactions import Interactions
from tests.fakes.discord_rules import Rejected, error, json_response

TOKEN = "ODk5.fake.bot-token"
API = "/api/v10"
SENT_BY_DISCORD_PY = frozenset({"tts"})  # on every edit too, where Discord ignores it
SETTABLE_FLAGS = 1 << 2  # SUPPRESS_EMBEDS: the only flag an edit may change


@dataclass
class Call:
    method: str
    route: str  # the spec's template, e.g. POST /channels/{channel_id}/messages
    params: dict[str, str]  # path parameters
    query: dict[str, str]
    body: Json | list[Any] | None
    files: dict[str, bytes]  # files[n] -> bytes
    at: float  # time.monotonic()
    status: int = 0


@dataclass
class Failure:
    kind: str
    retry_after: float
    channel_id: str | None


@dataclass
class FakeDiscord:
    token: str = TOKEN
    app_id: str = field(default_factory=snowflake)
    bot: User = field(default_factory=lambda: User(snowflake(), "imagenet", bot=True))
    guild_id: str = field(default_factory=snowflake)
    calls: list[Call] = field(default_factory=list)
    unknown_fields: list[str] = field(default_factory=list)
    messages: dict[str, dict[str, Json]] = field(default_factory=dict)  # channel id -> message id -> message
    files: dict[str, bytes] = field(default_factory=dict)  # attachment id -> bytes
    commands: dict[str | None, list[Json]] = field(default_factory=dict)  # guild id (None: global) -> commands
    cdn_fetches: list[str] = field(default_factory=list)  # attachment ids fetched from the CDN
    cdn_bytes_sent: int = 0  # what the CDN wrote before the client stopped reading

    shards: int = 1  # the shard count GET /gateway/bot recommends

    def __post_init__(self) -> None:
        self.guilds: dict[str, str] = {self.guild_id: "Imagenet test"}  # id -> name, the bot is in each
        self.channels: dict[str, Channel] = {}
        self.users: dict[str, User] = {}
        self.dm_channels: dict[str, str] = {}  # user id -> DM channel id
        self.failures: dict[str, list[Failure]] = {}
        self.gallery = self.add_channel("gallery")
        self.general = self.add_channel("general")
        self.gateway = Gateway(self)
        self.interactions = Interactions(self)
        self._routes = discord_routes.handlers(self)
        self._arrived = asyncio.Condition()
        self._stopping = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.url = ""

    # -- setup ---------------------------------------------------------------------------------
    def add_channel(self, name: str, guild_id: str | None = None) -> Channel:
        channel = Channel(snowflake(), GUILD_TEXT, name=name, guild_id=guild_id or self.guild_id)
        self.channels[channel.id] = channel
        return channel

    def add_guild(self, name: str, shard: tuple[int, int] | None = None) -> str:
        """Another guild the bot is in, on shard (id, count) if given; add_channel fills it."""
        guild_id = snowflake() if shard is None else snowflake_on(*shard)
        self.guilds[guild_id] = name
        return guild_id

    def add_user(self, username: str) -> User:
        user = User(snowflake(), username)
        self.users[user.id] = user
        return user

    def dm_of(self, user: User) -> Channel:
        channel_id = self.dm_channels.get(user.id)
        if channel_id is None:
            channel_id = self.dm_channels[user.id] = snowflake()
            self.channels[channel_id] = Channel(channel_id, DM, recipient=user)
        return self.channels[channel_id]

    def attachment(self, data: bytes, filename: str, content_type: str | None = None) -> Json:
        """A file a person attaches to a slash command's attachment option: Discord uploads it first,
        then sends its object in the interaction's `data.resolved.attachments`, fetchable from the CDN."""
        attachment_id = snowflake()
        self.files[attachment_id] = data
        url = f"{self.url}/ephemeral-attachments/{self.general.id}/{attachment_id}/{filename}?ex=1&is=1&hm=ab"
        found: Json = {"id": attachment_id, "filename": filename, "size": len(data), "url": url, "proxy_url": url}
        found["ephemeral"] = True
        if content_type is not None:
            found["content_type"] = content_type
        return found

    def fail(
        self, route: str, kind: str, *, times: int = 1, retry_after: float = 1.0, channel_id: str | None = None
    ) -> None:
        if discord_spec.match(*route.split(" ", 1)) is None:
            raise ValueError(f"no such Discord route: {route}")
        self.failures.setdefault(route, []).extend(Failure(kind, retry_after, channel_id) for _ in range(times))

    # -- what arrived --------------------------------------------------------------------------
    def calls_of(self, route: str) -> list[Call]:
        return [c for c in self.calls if c.route == route]

    def in_channel(self, channel_id: str) -> list[Json]:
        return list(self.messages.get(channel_id, {}).values())

    def attachment_bytes(self, message: Json) -> list[bytes]:
        return [self.files[a["id"]] for a in message["attachments"]]

    async def wait_for(self, route: str, where: Callable[[Call], bool] = lambda c: True, seconds: float = 5) -> Call:
        async with asyncio.timeout(seconds), self._arrived:
            while True:
                for call in self.calls:
                    if call.route == route and call.status and where(call):
                        return call
                await self._arrived.wait()

    # -- INTERACTION_CREATE, delegated -----------------------------------------------------------
    async def slash(self, name: str, user: User, channel: Channel | None = None, **options: Any) -> Any:
        return await self.interactions.slash(name, user, channel or self.general, options)

    async def autocomplete(
        self, name: str, user: User, focused: str, channel: Channel | None = None, **options: Any
    ) -> Any:
        return await self.interactions.autocomplete(name, user, channel or self.general, options, focused)

    async def press(self, message: Json, custom_id: str, user: User) -> Any:
        return await self.interactions.press(message, custom_id, user)

    async def submit(self, opened: Any, values: dict[str, str], user: User | None = None) -> Any:
        return await self.interactions.submit(opened, values, user)

    # -- server --------------------------------------------------------------------------------
    async def __aenter__(self) -> FakeDiscord:
        app = web.Application(client_max_size=30 * 1024 * 1024)
        app.router.add_get("/gateway", self.gateway.handle)
        app.router.add_get("/{kind:(?:ephemeral-)?attachments}/{path:.*}", self._cdn)
        app.router.add_route("*", API + "/{path:.*}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stopping.set()
        await self.gateway.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_base(self) -> str:
        return self.url + API

    @property
    def gateway_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/gateway"

    async def _cdn(self, request: web.Request) -> web.StreamResponse:
        """Discord's CDN: no token needed, the file's bytes; an unknown one is a 404."""
        attachment_id = request.match_info["path"].split("/")[-2]
        data = self.files.get(attachment_id)
        if data is None:
            return web.Response(status=404, text="Not Found")
        self.cdn_fetches.append(attachment_id)
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        response.content_length = len(data)
        await response.prepare(request)
        try:  # in pieces, so a client that stops reading early is seen to
            for start in range(0, len(data), 64 * 1024):
                await response.write(data[start : start + 64 * 1024])
                self.cdn_bytes_sent += len(data[start : start + 64 * 1024])
        except (ConnectionResetError, OSError):
            return response
        await response.write_eof()
        return response

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["path"]
        operation = discord_spec.match(request.method, path)
        if operation is None:
            known = any(discord_spec.match(m, path) for m in ("GET", "POST", "PUT", "PATCH", "DELETE"))
            return error(405, 0, "405: Method Not Allowed") if known else error(404, 0, "404: Not Found")
        route = f"{operation.method} {operation.path}"
        body, files = await _read_body(request)
        call = Call(request.method, route, operation.params, dict(request.query), body, files, time.monotonic())
        self.calls.append(call)
        response = await self._answer(request, operation, call)
        call.status = response.status
        async with self._arrived:
            self._arrived.notify_all()
        return response

    async def _answer(self, request: web.Request, operation: discord_spec.Operation, call: Call) -> web.StreamResponse:
        if not _needs_no_token(operation.path) and request.headers.get("Authorization") != f"Bot {self.token}":
            return error(401, 0, "401: Unauthorized")
        failed = await self._scripted_failure(call)
        if failed is not None:
            return failed
        try:
            self._check(operation, call, request.content_type)
            handler = self._routes.get(call.route)
            if handler is None:
                return error(501, 0, f"the fake Discord does not serve {call.route}")
            return await handler(call)
        except Rejected as exc:
            return error(exc.status, exc.code, exc.message, exc.errors)

    def _check(self, operation: discord_spec.Operation, call: Call, content_type: str) -> None:
        validator = discord_spec.validator(operation.method, operation.path, content_type)
        if validator is None:
            return
        if call.body is None:
            raise Rejected(400, 50109, "The request body contains invalid JSON.")
        broken = discord_spec.first_error(validator, call.body)
        if broken is not None:
            where, why = broken
            raise Rejected(400, 50035, "Invalid Form Body", {where: {"_errors": [{"code": "SCHEMA", "message": why}]}})
        known = discord_spec.properties(operation.method, operation.path) or frozenset()
        if isinstance(call.body, dict):
            unknown = [k for k in call.body if k not in known and k not in SENT_BY_DISCORD_PY]
            self.unknown_fields.extend(f"{call.route}: {k}" for k in unknown)

    async def _scripted_failure(self, call: Call) -> web.StreamResponse | None:
        queue = self.failures.get(call.route, [])
        channel = call.params.get("channel_id")
        failure = next((f for f in queue if f.channel_id in (None, channel)), None)
        if failure is None:
            return None
        queue.remove(failure)
        if failure.kind == "429":
            body = {"message": "You are being rate limited.", "retry_after": failure.retry_after, "global": False}
            headers = {"Via": "1.1 google", "Retry-After": str(max(1, round(failure.retry_after)))}
            headers["X-RateLimit-Scope"] = "user"
            return json_response(body, 429, headers)
        if failure.kind == "403":
            return error(403, 50007, "Cannot send messages to this user")
        if failure.kind == "500":
            return error(500, 0, "500: Internal Server Error")
        if failure.kind == "hang":
            await self._stopping.wait()
            return error(500, 0, "the fake Discord stopped")
        raise ValueError(f"unknown failure kind {failure.kind!r}")

    def store(
        self, message: Json, files: dict[str, bytes], attachments: list[Json] | None, *, listed: bool = True
    ) -> None:
        """Keep a sent message (in its channel unless only its recipient sees it): its uploads
        become attachments with ids and URLs."""
        message["attachments"] = self._attachments([], files, attachments)
        if listed:
            self.messages.setdefault(message["channel_id"], {})[message["id"]] = message

    def edit(self, message: Json, body: Json, files: dict[str, bytes]) -> None:
        """Apply an edit: fields given replace the message's; `attachments` left out keeps its files."""
        for key in ("content", "embeds", "components"):
            if key in body:
                message[key] = body[key] or ([] if key != "content" else "")
        if "flags" in body and body["flags"] is not None:
            message["flags"] = int(body["flags"]) | (message["flags"] & ~SETTABLE_FLAGS)
        if "attachments" in body or files:
            message["attachments"] = self._attachments(message["attachments"], files, body.get("attachments"))
        message["edited_timestamp"] = now_iso()

    def _attachments(self, current: list[Json], files: dict[str, bytes], wanted: list[Json] | None) -> list[Json]:
        if wanted is None:  # attachments left out: what the message had stays
            wanted = [{"id": a["id"]} for a in current] + [
                {"id": str(n), "filename": f"file{n}"} for n in range(len(files))
            ]
        kept = {a["id"]: a for a in current}
        result = []
        for entry in wanted:
            key = str(entry["id"])
            if key in kept:
                result.append(kept[key])
                continue
            data = files.get(f"files[{key}]")
            if data is None:
                raise Rejected(
                    400, 50035, "Invalid Form Body", {"attachments": {"_errors": [{"message": f"no file {key}"}]}}
                )
            attachment_id = snowflake()
            self.files[attachment_id] = data
            name = entry.get("filename", f"file{key}")
            url = f"{self.url}/attachments/{attachment_id}/{name}"
            result.append({"id": attachment_id, "filename": name, "size": len(data), "url": url, "proxy_url": url})
        return result


def _needs_no_token(path: str) -> bool:
    """Interaction callbacks and webhooks are authorised by the token in their path."""
    return path.startswith(("/interactions/", "/webhooks/{webhook_id}/{webhook_token}")) or path.startswith("/gateway")


async def _read_body(request: web.Request) -> tuple[Json | list[Any] | None, dict[str, bytes]]:
    if not request.can_read_body:
        return None, {}
    if request.content_type == "multipart/form-data":
        body: Json | None = None
        files: dict[str, bytes] = {}
        reader = await request.multipart()
        async for part in reader:
            if part.name == "payload_json":
                body = json.loads(await part.text())  # type: ignore[union-attr]
            elif part.name:
                files[part.name] = bytes(await part.read())  # type: ignore[union-attr]
        return body, files
    try:
        return await request.json(), {}
    except json.JSONDecodeError:
        return None, {}


def check_outgoing(api: FakeDiscord) -> None:
    """A message discord.py built from our calls carries no field Discord does not know."""
    assert api.unknown_fields == [], f"fields Discord does not know: {api.unknown_fields}"


@pytest.fixture
async def discord_api() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as api:
        yield api


def point_discord_py_at(api: FakeDiscord, monkeypatch: pytest.MonkeyPatch) -> None:
    """discord.py's REST base and gateway URL, both module-level, pointed at the fake for one test."""
    import discord.gateway
    import discord.http
    import yarl

    monkeypatch.setattr(discord.http.Route, "BASE", api.api_base)
    monkeypatch.setattr(discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(api.gateway_url))
