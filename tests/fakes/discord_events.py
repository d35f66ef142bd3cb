"""Discord's JSON objects as the fake Discord sends them: users, guilds, channels, messages and
interactions, in the shape discord.py 2.7 parses (field names from Discord's API reference)."""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

Json = dict[str, Any]

DISCORD_EPOCH_MS = 1420070400000
ALL_PERMISSIONS = str((1 << 50) - 1)
_counter = itertools.count(1)

GUILD_TEXT, DM = 0, 1  # channel types
APPLICATION_COMMAND, MESSAGE_COMPONENT, AUTOCOMPLETE, MODAL_SUBMIT = 2, 3, 4, 5  # interaction types
# Option types of a slash command, by the Python value a test passes.
OPTION_TYPES = {
    "SUB_COMMAND": 1,
    "SUB_COMMAND_GROUP": 2,
    "STRING": 3,
    "INTEGER": 4,
    "BOOLEAN": 5,
    "NUMBER": 10,
    "ATTACHMENT": 11,
}


def snowflake() -> str:
    """A fresh id, increasing like Discord's (milliseconds since 2015 in the high bits)."""
    millis = int(time.time() * 1000) - DISCORD_EPOCH_MS
    return str((millis << 22) | (next(_counter) & 0x3FFFFF))


def snowflake_on(shard_id: int, count: int) -> str:
    """A fresh guild id that Discord routes to shard `shard_id` of `count`: (id >> 22) % count."""
    millis = int(time.time() * 1000) - DISCORD_EPOCH_MS
    millis += (shard_id - millis) % count
    return str((millis << 22) | (next(_counter) & 0x3FFFFF))


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


@dataclass(frozen=True)
class User:
    id: str
    username: str
    bot: bool = False

    def json(self) -> Json:
        return {
            "id": self.id,
            "username": self.username,
            "global_name": self.username.title(),
            "discriminator": "0",
            "avatar": None,
            "bot": self.bot,
            "public_flags": 0,
        }


@dataclass(frozen=True)
class Channel:
    id: str
    type: int
    name: str | None = None
    guild_id: str | None = None
    recipient: User | None = None  # a DM's other end

    def json(self) -> Json:
        if self.type == DM:
            assert self.recipient is not None
            return {"id": self.id, "type": DM, "last_message_id": None, "recipients": [self.recipient.json()]}
        return {
            "id": self.id,
            "type": self.type,
            "guild_id": self.guild_id,
            "name": self.name,
            "position": 0,
            "permission_overwrites": [],
            "nsfw": False,
            "parent_id": None,
            "topic": None,
            "last_message_id": None,
            "rate_limit_per_user": 0,
        }


def member(user: User, *, permissions: str = ALL_PERMISSIONS) -> Json:
    return {
        "user": user.json(),
        "nick": None,
        "roles": [],
        "joined_at": now_iso(),
        "deaf": False,
        "mute": False,
        "flags": 0,
        "pending": False,
        "permissions": permissions,
    }


def guild(guild_id: str, name: str, channels: list[Channel], bot: User) -> Json:
    """A GUILD_CREATE payload: the guild with its channels, its @everyone role and the bot as member."""
    return {
        "id": guild_id,
        "name": name,
        "icon": None,
        "owner_id": bot.id,
        "afk_timeout": 300,
        "verification_level": 0,
        "default_message_notifications": 0,
        "explicit_content_filter": 0,
        "mfa_level": 0,
        "nsfw_level": 0,
        "premium_tier": 0,
        "system_channel_flags": 0,
        "preferred_locale": "en-US",
        "features": [],
        "roles": [
            {
                "id": guild_id,
                "name": "@everyone",
                "permissions": "2248473465835073",
                "position": 0,
                "color": 0,
                "hoist": False,
                "managed": False,
                "mentionable": False,
                "flags": 0,
            }
        ],
        "emojis": [],
        "stickers": [],
        "joined_at": now_iso(),
        "large": False,
        "unavailable": False,
        "member_count": 2,
        "members": [member(bot)],
        "channels": [c.json() for c in channels],
        "threads": [],
        "presences": [],
        "voice_states": [],
        "stage_instances": [],
        "guild_scheduled_events": [],
        "soundboard_sounds": [],
    }


def message(channel_id: str, author: User, body: Json, *, guild_id: str | None = None, **extra: Any) -> Json:
    """A message as Discord answers it, from the fields a send asked for."""
    data: Json = {
        "id": snowflake(),
        "channel_id": channel_id,
        "type": 0,
        "content": body.get("content") or "",
        "author": author.json(),
        "timestamp": now_iso(),
        "edited_timestamp": None,
        "tts": bool(body.get("tts")),
        "mention_everyone": False,
        "mentions": [],
        "mention_roles": [],
        "attachments": [],
        "embeds": body.get("embeds") or [],
        "components": body.get("components") or [],
        "pinned": False,
        "flags": int(body.get("flags") or 0),
    }
    if guild_id is not None:
        data["guild_id"] = guild_id
    data.update(extra)
    return data


def interaction(
    kind: int, data: Json, *, app_id: str, user: User, channel: Channel, message: Json | None = None
) -> Json:
    """An INTERACTION_CREATE payload, from a guild channel (with a member) or a DM (with a user)."""
    payload: Json = {
        "id": snowflake(),
        "application_id": app_id,
        "type": kind,
        "data": data,
        "channel_id": channel.id,
        "channel": channel.json(),
        "token": f"itoken-{snowflake()}",
        "version": 1,
        "app_permissions": ALL_PERMISSIONS,
        "locale": "en-US",
        "entitlements": [],
        "attachment_size_limit": 10 * 1024 * 1024,
    }
    if channel.guild_id is not None:
        payload.update(guild_id=channel.guild_id, member=member(user), guild_locale="en-US", context=0)
        payload["authorizing_integration_owners"] = {"0": channel.guild_id}
    else:
        payload.update(user=user.json(), context=1)
        payload["authorizing_integration_owners"] = {"1": user.id}
    if message is not None:
        payload["message"] = message
    return payload


def command_options(declared: list[Json], given: dict[str, Any], command: str) -> list[Json]:
    """Options as Discord sends them, typed from the command's registered declaration; a test
    passing an option the command does not declare fails, as Discord would never send it."""
    by_name = {o["name"]: o for o in declared}
    options = []
    for name, value in given.items():
        if name not in by_name:
            raise ValueError(f"/{command} has no option {name!r} (declared: {sorted(by_name)})")
        option = by_name[name]
        if option["type"] in (OPTION_TYPES["SUB_COMMAND"], OPTION_TYPES["SUB_COMMAND_GROUP"]):
            inner = command_options(option.get("options", []), value or {}, f"{command} {name}")
            options.append({"name": name, "type": option["type"], "options": inner})
            continue
        if option["type"] == OPTION_TYPES["ATTACHMENT"]:
            # The option's value is the attachment's id; the file itself is in data.resolved.attachments.
            if not (isinstance(value, dict) and "id" in value):
                raise ValueError(f"/{command} {name}: pass an attachment from FakeDiscord.attachment()")
            options.append({"name": name, "type": option["type"], "value": value["id"]})
            continue
        choices = [c["value"] for c in option.get("choices", [])]
        if choices and value not in choices:
            raise ValueError(f"/{command} {name}: {value!r} is not one of {choices}")
        options.append({"name": name, "type": option["type"], "value": value})
    missing = [o["name"] for o in declared if o.get("required") and o["name"] not in given]
    if missing:
        raise ValueError(f"/{command} needs {missing}")
    return options


def resolved_attachments(declared: list[Json], given: dict[str, Any]) -> dict[str, Json]:
    """The attachment objects of the attachment options given, by id, as `data.resolved.attachments`."""
    kinds = {o["name"]: o["type"] for o in declared}
    return {v["id"]: v for k, v in given.items() if kinds.get(k) == OPTION_TYPES["ATTACHMENT"]}


def modal_answers(modal: Json, values: dict[str, str]) -> list[Json]:
    """A modal submit's components, mirroring the modal the bot opened: text inputs in Labels
    (type 18, since 2025) or in action rows (the older form), each with the answer typed."""
    submitted, unused = [], dict(values)
    for row in modal.get("components", []):
        inner = row.get("component") if row["type"] == 18 else (row.get("components") or [None])[0]
        if inner is None or inner.get("type") != 4:
            continue
        answer = {"type": 4, "id": inner.get("id", 0), "custom_id": inner["custom_id"]}
        answer["value"] = unused.pop(inner["custom_id"], "")
        if row["type"] == 18:
            submitted.append({"type": 18, "id": row.get("id", 0), "component": answer})
        else:
            submitted.append({"type": 1, "id": row.get("id", 0), "components": [answer]})
    if unused:
        raise ValueError(f"the modal has no text input {sorted(unused)}")
    return submitted
