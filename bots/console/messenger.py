"""The console as a Messenger: what the core sends on its own (progress edits, gallery posts)
is printed like any other message."""

from __future__ import annotations

import itertools
from collections.abc import Callable

from bots.console.render import render
from core.messenger import MessageRef
from core.replies import Reply


class ConsoleMessenger:
    platform = "console"
    rate_per_second = 1000.0

    def __init__(self, write: Callable[[str], None], on_buttons: Callable[[Reply], None]) -> None:
        self.write = write
        self.on_buttons = on_buttons
        self._ids = itertools.count(1)

    def new_ref(self, chat_id: str) -> MessageRef:
        return MessageRef(self.platform, chat_id, str(next(self._ids)))

    async def send(self, chat_id: str, reply: Reply) -> MessageRef:
        self.on_buttons(reply)
        self.write(render(reply, "bot"))
        return self.new_ref(chat_id)

    async def edit(self, ref: MessageRef, reply: Reply) -> MessageRef:
        self.on_buttons(reply)
        self.write(render(reply, "bot"))
        return ref
