"""A fake messaging platform that enforces Telegram's limits itself, as the Bot API does: at most 30
messages in any sliding second overall and one a second per chat; beyond that it answers 429
(`core.messenger.RetryLater`) and counts it. It "uploads" the picture (reads the file, which must
exist) and takes a few milliseconds of network time per request.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from core.messenger import MessageRef, RetryLater
from core.replies import Reply

OVERALL_PER_SECOND = 30
PER_CHAT_SECONDS = 1.0


@dataclass
class FakeTelegram:
    platform: str
    rate_per_second: float = 25.0  # what the outbox paces itself to (core.outbox reads it)
    latency: float = 0.005  # each way: the request reaches the server after it, the answer after twice it
    overall_per_second: int = OVERALL_PER_SECOND  # raised only by the smoke test, to run fast
    max_in_flight: int = 8  # sends the outbox keeps waiting for an answer at once (as the Telegram messenger)
    clock: Callable[[], float] = time.monotonic
    sent: list[float] = field(default_factory=list)  # server-side acceptance times
    attempts: list[str] = field(default_factory=list)  # the chat of every send, accepted or not, in order
    too_many: int = 0  # the 429s
    bytes_uploaded: int = 0
    _window: deque[float] = field(default_factory=deque)
    _last_in_chat: dict[str, float] = field(default_factory=dict)

    async def send(self, chat_id: str, reply: Reply) -> MessageRef:
        self.attempts.append(chat_id)
        data = await asyncio.to_thread(reply.image.path.read_bytes) if reply.image else b""
        await asyncio.sleep(self.latency)
        self._admit(chat_id)
        self.bytes_uploaded += len(data)
        await asyncio.sleep(self.latency)
        return MessageRef(self.platform, chat_id, str(len(self.sent)))

    async def edit(self, ref: MessageRef, reply: Reply) -> MessageRef:
        await asyncio.sleep(self.latency)
        self._admit(ref.chat_id)
        await asyncio.sleep(self.latency)
        return ref

    def _admit(self, chat_id: str) -> None:
        now = self.clock()
        while self._window and self._window[0] <= now - 1.0:
            self._window.popleft()
        wait = 0.0
        if len(self._window) >= self.overall_per_second:
            wait = self._window[0] + 1.0 - now
        last = self._last_in_chat.get(chat_id)
        if last is not None and now - last < PER_CHAT_SECONDS:
            wait = max(wait, last + PER_CHAT_SECONDS - now)
        if wait > 0:
            self.too_many += 1
            raise RetryLater(float(max(1, math.ceil(wait))))  # Telegram's retry_after is whole seconds
        self._window.append(now)
        self._last_in_chat[chat_id] = now
        self.sent.append(now)

    def busiest_second(self) -> int:
        """The most messages accepted in any sliding second of the run."""
        best, lo = 0, 0
        for hi, at in enumerate(self.sent):
            while self.sent[lo] <= at - 1.0:
                lo += 1
            best = max(best, hi - lo + 1)
        return best
