"""The context every handler gets: PTB's CallbackContext with the core and the messenger on it."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from telegram.ext import CallbackContext, ExtBot

from bots.telegram.messenger import TelegramMessenger
from core.app import Core

CORE = "core"
MESSENGER = "messenger"
WEBHOOK = "webhook"


class RecentIds:
    """The last few thousand update ids, to handle an update delivered twice only once."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._ids: OrderedDict[int, None] = OrderedDict()

    def add(self, update_id: int) -> bool:
        """True the first time an id is seen."""
        if update_id in self._ids:
            return False
        self._ids[update_id] = None
        if len(self._ids) > self.size:
            self._ids.popitem(last=False)
        return True


class BotContext(CallbackContext[ExtBot[Any], dict[Any, Any], dict[Any, Any], dict[Any, Any]]):
    @property
    def core(self) -> Core:
        return self.bot_data[CORE]  # type: ignore[no-any-return]

    @property
    def messenger(self) -> TelegramMessenger:
        return self.bot_data[MESSENGER]  # type: ignore[no-any-return]
