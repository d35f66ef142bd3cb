"""The bot object: PTB's ExtBot, made tolerant of updates it cannot parse."""

from __future__ import annotations

import logging
from typing import Any

from telegram import Update
from telegram.ext import ExtBot

from bots.telegram.limiter import SendOptions

log = logging.getLogger(__name__)


def parse_update(data: object, bot: ExtBot[Any]) -> Update | None:
    """An Update, or None (logged) when Telegram sent something we cannot read."""
    try:
        if not isinstance(data, dict):
            raise TypeError(f"an update must be a JSON object, not {type(data).__name__}")
        return Update.de_json(data, bot)
    except Exception as exc:
        update_id = data.get("update_id") if isinstance(data, dict) else None
        log.warning("ignoring malformed update %s: %s: %s", update_id, type(exc).__name__, exc)
        return None


class TelegramBot(ExtBot[SendOptions]):
    """PTB parses a whole getUpdates batch at once, and one unreadable update makes the updater
    fetch the same batch again forever. Here an unreadable update is logged and replaced by an
    empty one with the same id, so the offset still moves past it."""

    async def _do_post(self, endpoint: str, data: dict[str, Any], **kwargs: Any) -> Any:
        result = await super()._do_post(endpoint, data, **kwargs)
        if endpoint == "getUpdates" and isinstance(result, list):
            return [entry for entry in map(self._readable, result) if entry is not None]
        return result

    def _readable(self, entry: object) -> object:
        if parse_update(entry, self) is not None:
            return entry
        update_id = entry.get("update_id") if isinstance(entry, dict) else None
        return {"update_id": update_id} if isinstance(update_id, int) else None
