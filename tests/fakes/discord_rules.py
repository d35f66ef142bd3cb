"""What Discord refuses beyond its OpenAPI schema, and its answers: JSON with exactly
`Content-Type: application/json` (discord.py reads a body under any other type as text)."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

Json = dict[str, Any]
JSON = {"Content-Type": "application/json"}

CONTENT_LIMIT = 2000  # a bot's message (the schema says 4,000: that is Nitro users' limit)
EMBED_TOTAL_LIMIT = 6000
UPLOAD_LIMIT = 10 * 1024 * 1024
ACTION_ROWS_LIMIT = 5
COMPONENTS_V2 = 1 << 15
LINK_STYLE, PREMIUM_STYLE = 5, 6


class Rejected(Exception):
    def __init__(self, status: int, code: int, message: str, errors: Json | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.errors = status, code, message, errors


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, body=json.dumps(data).encode(), headers={**JSON, **(headers or {})})


def error(status: int, code: int, message: str, errors: Json | None = None) -> web.Response:
    body: Json = {"code": code, "message": message}
    if errors:
        body["errors"] = errors
    return json_response(body, status)


def invalid(where: str, code: str, message: str) -> Rejected:
    return Rejected(400, 50035, "Invalid Form Body", {where: {"_errors": [{"code": code, "message": message}]}})


def check_message(body: Json, files: dict[str, bytes], *, creating: bool) -> None:
    """A message body (a send, an edit, an interaction's message) against Discord's own limits."""
    content = body.get("content") or ""
    if len(content) > CONTENT_LIMIT:
        raise invalid("content", "BASE_TYPE_MAX_LENGTH", f"Must be {CONTENT_LIMIT} or fewer in length.")
    embeds = body.get("embeds") or []
    if sum(_embed_length(e) for e in embeds) > EMBED_TOTAL_LIMIT:
        raise invalid("embeds", "MAX_EMBED_SIZE_EXCEEDED", "Embed size exceeds maximum size of 6000")
    for name, data in files.items():
        if len(data) > UPLOAD_LIMIT:
            raise Rejected(413, 40005, f"Request entity too large ({name})")
    _check_components(body.get("components") or [], int(body.get("flags") or 0))
    parts = (content, embeds, body.get("components"), files, body.get("sticker_ids"), body.get("poll"))
    if creating and not any(parts):
        raise Rejected(400, 50006, "Cannot send an empty message")


def _embed_length(embed: Json) -> int:
    texts = [embed.get("title"), embed.get("description"), (embed.get("footer") or {}).get("text")]
    texts.append((embed.get("author") or {}).get("name"))
    for item in embed.get("fields") or []:
        texts += [item.get("name"), item.get("value")]
    return sum(len(t) for t in texts if t)


def _check_components(rows: list[Json], flags: int) -> None:
    if not flags & COMPONENTS_V2 and len(rows) > ACTION_ROWS_LIMIT:
        raise invalid("components", "BASE_TYPE_MAX_LENGTH", f"Must be {ACTION_ROWS_LIMIT} or fewer in length.")
    seen: set[str] = set()
    for index, row in enumerate(rows):
        for position, item in enumerate(row.get("components") or []):
            where = f"components.{index}.components.{position}"
            if item.get("type") == 2:
                _check_button(item, where)
            custom_id = item.get("custom_id")
            if custom_id is not None:
                if custom_id in seen:
                    raise invalid(
                        f"{where}.custom_id",
                        "COMPONENT_CUSTOM_ID_DUPLICATED",
                        "Component custom id cannot be duplicated",
                    )
                seen.add(custom_id)


def _check_button(button: Json, where: str) -> None:
    style = button.get("style")
    if style == LINK_STYLE and not button.get("url"):
        raise invalid(f"{where}.url", "BASE_TYPE_REQUIRED", "This field is required")
    if style not in (LINK_STYLE, PREMIUM_STYLE) and not button.get("custom_id"):
        raise invalid(f"{where}.custom_id", "BASE_TYPE_REQUIRED", "This field is required")
    if style not in (PREMIUM_STYLE,) and not button.get("label") and not button.get("emoji"):
        raise invalid(f"{where}.label", "BUTTON_COMPONENT_INVALID_EMOJI_OR_LABEL", "A label or an emoji is required")
