"""The console as a Messenger: what the core sends on its own (progress edits, notifications,
digests) is printed like any other message, but only to the person it is for. One terminal plays
several people (`/as`), so a message for someone else is held until they are the one typing."""

from __future__ import annotations

import itertools
from collections.abc import Callable

from bots.console.render import render
from core.messenger import MessageRef
from core.replies import Reply


class ConsoleMessenger:
    platform = "console"
    rate_per_second = 1000.0

    def __init__(
        self, write: Callable[[str], None], on_buttons: Callable[[Reply], None], current: Callable[[], str]
    ) -> None:
        self.write = write
        self.on_buttons = on_buttons
        self.current = current  # the chat id of the person typing now
        self._ids = itertools.count(1)
        # chat id -> message id -> its latest content, in the order first sent: an edit of a held
        # message replaces it, so the person sees each message once, as it ended up.
        self._held: dict[str, dict[str, Reply]] = {}

    def new_ref(self, chat_id: str) -> MessageRef:
        return MessageRef(self.platform, chat_id, str(next(self._ids)))

    async def send(self, chat_id: str, reply: Reply) -> MessageRef:
        ref = self.new_ref(chat_id)
        self._show_or_hold(ref, reply)
        return ref

    async def edit(self, ref: MessageRef, reply: Reply) -> MessageRef:
        self._show_or_hold(ref, reply)
        return ref

    def _show_or_hold(self, ref: MessageRef, reply: Reply) -> None:
        if ref.chat_id == self.current():
            self.on_buttons(reply)
            self.write(render(reply, "bot"))
        else:
            self._held.setdefault(ref.chat_id, {})[ref.message_id] = reply

    def release(self, chat_id: str) -> list[Reply]:
        """The messages held for this chat, oldest first; they are no longer held."""
        return list(self._held.pop(chat_id, {}).values())
