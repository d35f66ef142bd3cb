"""PTB's concurrent updates, one at a time per chat: the core's turns (core.turns) around each."""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import Any

from telegram import Update
from telegram.ext import BaseUpdateProcessor

from bots.telegram.context import RecentIds
from bots.telegram.messenger import PLATFORM
from core.app import Core

log = logging.getLogger(__name__)

CONCURRENT = 256  # updates handled at once (PTB's default for concurrent_updates(True))


class PerChat(BaseUpdateProcessor):
    """Telegram may deliver an update twice (a retried webhook), even to two processes of one
    deployment behind a proxy: handle it once. The memory catches a repeat here cheaply; the
    database, one that another process took. Updates of different chats run concurrently (one slow
    command must not hold up everyone else); a chat's own wait for each other, in arrival order."""

    def __init__(self, core: Core, max_concurrent_updates: int = CONCURRENT) -> None:
        super().__init__(max_concurrent_updates)
        self.core = core
        self.recent = RecentIds()

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        if not isinstance(update, Update):
            await coroutine
            return
        try:
            if self.recent.add(update.update_id):
                chat = update.effective_chat
                turn = self.core.turns.arrival(PLATFORM, str(update.update_id), str(chat.id) if chat else None)
                async with turn as fresh:
                    if fresh:
                        await coroutine
                        return
            log.info("update %s arrived again; ignored", update.update_id)
        finally:
            close = getattr(coroutine, "close", None)
            if close is not None:
                close()  # a no-op once awaited; else the dropped handling is never started

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass
