"""The fake Discord's REST routes, keyed as in Discord's OpenAPI description."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import web

from tests.fakes.discord_events import Channel, Json, message, snowflake
from tests.fakes.discord_rules import Rejected, check_message, json_response

if TYPE_CHECKING:
    from tests.fakes.discord_api import Call, FakeDiscord

Handler = Callable[["Call"], Awaitable[web.Response]]


def handlers(api: FakeDiscord) -> dict[str, Handler]:
    rest, hooks = Rest(api), api.interactions
    return {
        "GET /gateway": rest.gateway,
        "GET /gateway/bot": rest.gateway_bot,
        "GET /users/@me": rest.me,
        "GET /oauth2/applications/@me": rest.application,
        "GET /applications/@me": rest.application,
        "POST /users/@me/channels": rest.create_dm,
        "GET /channels/{channel_id}": rest.channel,
        "PUT /applications/{application_id}/commands": rest.put_commands,
        "GET /applications/{application_id}/commands": rest.get_commands,
        "PUT /applications/{application_id}/guilds/{guild_id}/commands": rest.put_commands,
        "GET /applications/{application_id}/guilds/{guild_id}/commands": rest.get_commands,
        "POST /channels/{channel_id}/messages": rest.send,
        "GET /channels/{channel_id}/messages/{message_id}": rest.get_message,
        "PATCH /channels/{channel_id}/messages/{message_id}": rest.edit_message,
        "DELETE /channels/{channel_id}/messages/{message_id}": rest.delete_message,
        "POST /interactions/{interaction_id}/{interaction_token}/callback": hooks.callback,
        "POST /webhooks/{webhook_id}/{webhook_token}": hooks.followup,
        "GET /webhooks/{webhook_id}/{webhook_token}/messages/@original": hooks.get_message,
        "PATCH /webhooks/{webhook_id}/{webhook_token}/messages/@original": hooks.edit_message,
        "DELETE /webhooks/{webhook_id}/{webhook_token}/messages/@original": hooks.delete_message,
        "GET /webhooks/{webhook_id}/{webhook_token}/messages/{message_id}": hooks.get_message,
        "PATCH /webhooks/{webhook_id}/{webhook_token}/messages/{message_id}": hooks.edit_message,
        "DELETE /webhooks/{webhook_id}/{webhook_token}/messages/{message_id}": hooks.delete_message,
    }


def _body(call: Call) -> Json:
    return call.body if isinstance(call.body, dict) else {}


class Rest:
    def __init__(self, api: FakeDiscord) -> None:
        self.api = api

    async def gateway(self, call: Call) -> web.Response:
        return json_response({"url": self.api.gateway_url})

    async def gateway_bot(self, call: Call) -> web.Response:
        limit = {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1}
        return json_response({"url": self.api.gateway_url, "shards": self.api.shards, "session_start_limit": limit})

    async def me(self, call: Call) -> web.Response:
        return json_response(self.api.bot.json() | {"verified": True, "mfa_enabled": False, "flags": 0})

    async def application(self, call: Call) -> web.Response:
        owner = {"id": snowflake(), "username": "owner", "discriminator": "0", "avatar": None, "global_name": None}
        return json_response(
            {
                "id": self.api.app_id,
                "name": self.api.bot.username,
                "description": "",
                "icon": None,
                "bot_public": False,
                "bot_require_code_grant": False,
                "owner": owner,
                "verify_key": "0" * 64,
                "flags": 0,
                "team": None,
                "summary": "",
            }
        )

    async def create_dm(self, call: Call) -> web.Response:
        user = self.api.users.get(str(_body(call).get("recipient_id")))
        if user is None:
            raise Rejected(400, 50033, "Invalid Recipient(s)")
        return json_response(self.api.dm_of(user).json())

    async def channel(self, call: Call) -> web.Response:
        return json_response(self._channel(call).json())

    def _channel(self, call: Call) -> Channel:
        channel = self.api.channels.get(call.params["channel_id"])
        if channel is None:
            raise Rejected(404, 10003, "Unknown Channel")
        return channel

    def _commands_scope(self, call: Call) -> str | None:
        if call.params["application_id"] != self.api.app_id:
            raise Rejected(403, 50001, "Missing Access")
        guild_id = call.params.get("guild_id")
        if guild_id is not None and guild_id not in self.api.guilds:
            raise Rejected(403, 50001, "Missing Access")
        return guild_id

    async def put_commands(self, call: Call) -> web.Response:
        scope = self._commands_scope(call)
        names = [c["name"] for c in call.body or []]  # type: ignore[union-attr]
        if len(names) != len(set(names)):
            raise Rejected(400, 50035, "Invalid Form Body", {"_root": {"_errors": [{"message": "duplicate name"}]}})
        commands = [self._command(c, scope) for c in call.body or []]  # type: ignore[union-attr]
        self.api.commands[scope] = commands
        return json_response(commands)

    def _command(self, declared: Json, guild_id: str | None) -> Json:
        command = {"type": 1, "default_member_permissions": None, "nsfw": False, "description_localizations": None}
        command |= declared | {"id": snowflake(), "application_id": self.api.app_id, "version": snowflake()}
        if guild_id is not None:
            command["guild_id"] = guild_id
        return command

    async def get_commands(self, call: Call) -> web.Response:
        return json_response(self.api.commands.get(self._commands_scope(call), []))

    async def send(self, call: Call) -> web.Response:
        channel = self._channel(call)
        body = _body(call)
        check_message(body, call.files, creating=True)
        sent = message(channel.id, self.api.bot, body, guild_id=channel.guild_id)
        self.api.store(sent, call.files, body.get("attachments"))
        return json_response(sent)

    def _message(self, call: Call) -> Json:
        self._channel(call)
        found = self.api.messages.get(call.params["channel_id"], {}).get(call.params["message_id"])
        if found is None:
            raise Rejected(404, 10008, "Unknown Message")
        return found

    async def get_message(self, call: Call) -> web.Response:
        return json_response(self._message(call))

    async def edit_message(self, call: Call) -> web.Response:
        found = self._message(call)
        body = _body(call)
        check_message(body, call.files, creating=False)
        self.api.edit(found, body, call.files)
        return json_response(found)

    async def delete_message(self, call: Call) -> web.Response:
        found = self._message(call)
        del self.api.messages[found["channel_id"]][found["id"]]
        return web.Response(status=204)
