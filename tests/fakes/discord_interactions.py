"""Interactions in the fake Discord: INTERACTION_CREATE pushed by the test (a slash command, a
button press, a modal submit), then the bot's callback, followups and @original edits, answered
and refused as Discord does (3 s to acknowledge, once only; a response type that fits the
interaction; followups only after the acknowledgement)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.fakes import discord_events as events
from tests.fakes.discord_events import Channel, Json, User
from tests.fakes.discord_rules import Rejected, check_message, json_response

if TYPE_CHECKING:
    from tests.fakes.discord_api import Call, FakeDiscord

PONG, MESSAGE, DEFERRED_MESSAGE, DEFERRED_UPDATE, UPDATE, AUTOCOMPLETE_RESULT, MODAL = 1, 4, 5, 6, 7, 8, 9
ALLOWED = {
    events.APPLICATION_COMMAND: {MESSAGE, DEFERRED_MESSAGE, MODAL},
    events.MESSAGE_COMPONENT: {MESSAGE, DEFERRED_MESSAGE, DEFERRED_UPDATE, UPDATE, MODAL},
    events.AUTOCOMPLETE: {AUTOCOMPLETE_RESULT},
    events.MODAL_SUBMIT: {MESSAGE, DEFERRED_MESSAGE, DEFERRED_UPDATE, UPDATE},
}
EPHEMERAL, LOADING = 1 << 6, 1 << 7
ACK_WINDOW = 3.0  # seconds to acknowledge an interaction


@dataclass
class Interaction:
    payload: Json
    channel: Channel
    user: User
    created: float = field(default_factory=time.monotonic)
    response_type: int | None = None  # the callback's type, once acknowledged
    response: Json | None = None  # the callback's data
    original: Json | None = None  # the response message (or, for a component, the message it sits on)
    followups: list[Json] = field(default_factory=list)
    modal: Json | None = None  # the modal the bot opened in answer

    @property
    def id(self) -> str:
        return str(self.payload["id"])

    @property
    def token(self) -> str:
        return str(self.payload["token"])

    @property
    def ephemeral(self) -> bool:
        return self.original is not None and bool(self.original["flags"] & EPHEMERAL)


class Interactions:
    def __init__(self, api: FakeDiscord) -> None:
        self.api = api
        self.ack_window = ACK_WINDOW
        self.by_id: dict[str, Interaction] = {}

    # -- pushed by the test --------------------------------------------------------------------
    async def slash(self, name: str, user: User, channel: Channel, options: dict[str, Any]) -> Interaction:
        command, guild_id = self._registered(name, channel)
        data: Json = {"id": command["id"], "name": name, "type": 1}
        data["options"] = events.command_options(command.get("options", []), options, name)
        attachments = events.resolved_attachments(command.get("options", []), options)
        if attachments:
            data["resolved"] = {"attachments": attachments}
        if guild_id is not None:
            data["guild_id"] = guild_id
        return await self._push(events.APPLICATION_COMMAND, data, user, channel)

    async def autocomplete(
        self, name: str, user: User, channel: Channel, options: dict[str, Any], focused: str
    ) -> Interaction:
        """The person is typing option `focused` (the others as typed so far): Discord asks for choices."""
        command, guild_id = self._registered(name, channel)
        declared = {o["name"]: o for o in command.get("options", [])}
        if not declared.get(focused, {}).get("autocomplete"):
            raise ValueError(f"/{name} {focused} has no autocomplete")
        typed = [
            {"name": key, "type": declared[key]["type"], "value": value, "focused": key == focused}
            for key, value in options.items()
        ]
        data: Json = {"id": command["id"], "name": name, "type": 1, "options": typed}
        if guild_id is not None:
            data["guild_id"] = guild_id
        return await self._push(events.AUTOCOMPLETE, data, user, channel)

    async def press(self, message: Json, custom_id: str, user: User) -> Interaction:
        ids = [c.get("custom_id") for row in message.get("components", []) for c in row.get("components", [])]
        if custom_id not in ids:
            raise ValueError(f"message {message['id']} has no component {custom_id!r} (it has {ids})")
        channel = self.api.channels[message["channel_id"]]
        data = {"custom_id": custom_id, "component_type": 2}
        pushed = await self._push(events.MESSAGE_COMPONENT, data, user, channel, message=message)
        pushed.original = message
        return pushed

    async def submit(self, opened: Interaction, values: dict[str, str], user: User | None) -> Interaction:
        if opened.modal is None:
            raise ValueError(f"interaction {opened.id} was not answered with a modal")
        data = {"custom_id": opened.modal["custom_id"], "components": events.modal_answers(opened.modal, values)}
        message = opened.payload.get("message")
        return await self._push(events.MODAL_SUBMIT, data, user or opened.user, opened.channel, message=message)

    def _registered(self, name: str, channel: Channel) -> tuple[Json, str | None]:
        """Discord only sends commands the bot registered: the guild's first, then global ones."""
        if channel.guild_id is not None:
            for command in self.api.commands.get(channel.guild_id, []):
                if command["name"] == name:
                    return command, channel.guild_id
        for command in self.api.commands.get(None, []):
            if command["name"] == name:
                return command, None
        raise ValueError(f"/{name} is not registered (sync the command tree first)")

    async def _push(
        self, kind: int, data: Json, user: User, channel: Channel, message: Json | None = None
    ) -> Interaction:
        payload = events.interaction(kind, data, app_id=self.api.app_id, user=user, channel=channel, message=message)
        pushed = Interaction(payload, channel, user)
        self.by_id[pushed.id] = pushed
        await self.api.gateway.dispatch("INTERACTION_CREATE", payload)
        return pushed

    # -- the bot's answers ---------------------------------------------------------------------
    async def callback(self, call: Call) -> web.Response:
        pushed = self.by_id.get(call.params["interaction_id"])
        if pushed is None or pushed.token != call.params["interaction_token"]:
            raise Rejected(404, 10062, "Unknown interaction")
        if pushed.response_type is not None:
            raise Rejected(400, 40060, "Interaction has already been acknowledged.")
        if time.monotonic() - pushed.created > self.ack_window:
            raise Rejected(404, 10062, "Unknown interaction")
        body = call.body if isinstance(call.body, dict) else {}
        kind, data = int(body["type"]), body.get("data") or {}
        if kind not in ALLOWED[pushed.payload["type"]]:
            raise Rejected(
                400, 50035, "Invalid Form Body", {"type": {"_errors": [{"message": "Invalid response type"}]}}
            )
        self._respond(pushed, kind, data, call.files)
        if call.query.get("with_response") not in ("1", "true", "True"):
            return web.Response(status=204)
        return json_response(self._callback_answer(pushed, kind))

    def _respond(self, pushed: Interaction, kind: int, data: Json, files: dict[str, bytes]) -> None:
        if kind in (MESSAGE, UPDATE):
            check_message(data, files, creating=kind == MESSAGE)
        pushed.response_type, pushed.response = kind, data
        if kind == MESSAGE:
            pushed.original = self._new_message(pushed, data, files)
        elif kind == DEFERRED_MESSAGE:
            flags = LOADING | (int(data.get("flags") or 0) & EPHEMERAL)
            pushed.original = self._new_message(pushed, {"flags": flags}, {})
        elif kind == UPDATE and pushed.original is not None:
            self.api.edit(pushed.original, data, files)
        elif kind == MODAL:
            pushed.modal = data

    def _callback_answer(self, pushed: Interaction, kind: int) -> Json:
        original = pushed.original
        answer: Json = {
            "interaction": {
                "id": pushed.id,
                "type": pushed.payload["type"],
                "response_message_id": original["id"] if original else None,
                "response_message_loading": kind == DEFERRED_MESSAGE,
                "response_message_ephemeral": pushed.ephemeral,
            },
            "resource": {"type": kind},
        }
        if kind in (MESSAGE, DEFERRED_MESSAGE, UPDATE) and original is not None:
            answer["resource"]["message"] = original
        return answer

    def _new_message(self, pushed: Interaction, data: Json, files: dict[str, bytes]) -> Json:
        metadata = {"id": pushed.id, "type": pushed.payload["type"], "user": pushed.user.json()}
        metadata["authorizing_integration_owners"] = pushed.payload["authorizing_integration_owners"]
        message = events.message(
            pushed.channel.id,
            self.api.bot,
            data,
            guild_id=pushed.channel.guild_id,
            webhook_id=self.api.app_id,
            application_id=self.api.app_id,
            interaction_metadata=metadata,
        )
        self.api.store(message, files, data.get("attachments"), listed=not message["flags"] & EPHEMERAL)
        return message

    # -- webhooks: followups and @original -----------------------------------------------------
    def _webhook(self, call: Call) -> Interaction:
        for pushed in self.by_id.values():
            if pushed.token == call.params["webhook_token"] and call.params["webhook_id"] == self.api.app_id:
                if pushed.response_type is None:
                    break  # followups and edits only after the acknowledgement
                return pushed
        raise Rejected(404, 10015, "Unknown Webhook")

    async def followup(self, call: Call) -> web.Response:
        pushed = self._webhook(call)
        body = call.body if isinstance(call.body, dict) else {}
        check_message(body, call.files, creating=True)
        original = pushed.original
        if original is not None and original["flags"] & LOADING:
            # The first followup after a deferral becomes the "thinking" message, keeping its visibility.
            self.api.edit(original, body, call.files)
            original["flags"] &= ~LOADING
            message = original
        else:
            message = self._new_message(pushed, body, call.files)
        pushed.followups.append(message)
        return json_response(message) if call.query.get("wait") in ("1", "true", "True") else web.Response(status=204)

    def _target(self, call: Call) -> Json:
        pushed = self._webhook(call)
        wanted = call.params.get("message_id", "@original")
        if wanted == "@original" or (pushed.original is not None and wanted == pushed.original["id"]):
            if pushed.original is None:
                raise Rejected(404, 10008, "Unknown Message")
            return pushed.original
        for message in pushed.followups:
            if message["id"] == wanted:
                return message
        raise Rejected(404, 10008, "Unknown Message")

    async def get_message(self, call: Call) -> web.Response:
        return json_response(self._target(call))

    async def edit_message(self, call: Call) -> web.Response:
        message = self._target(call)
        body = call.body if isinstance(call.body, dict) else {}
        check_message(body, call.files, creating=False)
        self.api.edit(message, body, call.files)
        message["flags"] &= ~LOADING
        return json_response(message)

    async def delete_message(self, call: Call) -> web.Response:
        message = self._target(call)
        self.api.messages.get(message["channel_id"], {}).pop(message["id"], None)
        return web.Response(status=204)
