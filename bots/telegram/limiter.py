"""Keeps every burst of outgoing messages under Telegram's flood limits, and waits out a RetryAfter.

Telegram's published limits: about 30 messages a second overall, one a second in one chat, and
20 a minute in one group or channel. Messages to one chat go out one at a time, in order (a lock per
chat), spaced by the chat interval; groups also keep a sliding window. Every message then takes the
next slot of the overall rate. Edits and deletions only take an overall slot; requests without a
chat (answering a button press, setting commands) are never delayed.

A RetryAfter pauses every request for that long, then the same request is sent again: a message is
never dropped for a 429. A timed-out request is never repeated here, since it may have arrived.

A request may carry `SendOptions` (PTB's `rate_limit_args`): how many times to retry a 429 (the outbox
asks for none: it pauses and retries on its own), and an `on_wire` hook called once every wait here
is over, right before the request leaves, so the outbox marks its row "sending" only then.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import warnings
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from telegram.error import RetryAfter
from telegram.ext import BaseRateLimiter
from telegram.warnings import PTBDeprecationWarning

from core.messenger import CalledOff, OnWire

log = logging.getLogger(__name__)

# Requests that put a new message in a chat: the ones Telegram's per-chat limits are about.
MESSAGE_METHODS = frozenset(
    {
        "sendMessage",
        "sendPhoto",
        "sendDocument",
        "sendAnimation",
        "sendVideo",
        "sendMediaGroup",
        "copyMessage",
        "copyMessages",
        "forwardMessage",
        "forwardMessages",
    }
)
TELEGRAM_MAX_PER_SECOND = 30.0

Result = bool | dict[str, Any] | list[dict[str, Any]]
Callback = Callable[..., Coroutine[Any, Any, Result]]


@dataclass(frozen=True, slots=True)
class SendOptions:
    retries: int | None = None  # RetryAfter waits before giving up; None: the limiter's max_retries
    on_wire: OnWire | None = None


def _gated(callback: Callback, on_wire: OnWire | None) -> Callback:
    if on_wire is None:
        return callback

    async def call(*args: Any, **kwargs: Any) -> Result:
        if not await on_wire():
            raise CalledOff("called off before it was sent")
        return await callback(*args, **kwargs)

    return call


@dataclass
class _ChatState:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    next_at: float = 0.0  # earliest time of the next message
    recent: deque[float] = field(default_factory=deque)  # send times inside the group window


# PTB warns, when a RetryAfter is made, that `retry_after` will become a timedelta: both are handled here.
warnings.filterwarnings("ignore", r".*`retry_after` will be of type", PTBDeprecationWarning)


def retry_seconds(exc: RetryAfter) -> float:
    value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def is_group(chat_id: object) -> bool:
    """Groups and channels have negative ids, or are named by @username."""
    if isinstance(chat_id, str):
        try:
            return int(chat_id) < 0
        except ValueError:
            return True
    return isinstance(chat_id, int) and chat_id < 0


class FloodLimiter(BaseRateLimiter[SendOptions]):
    def __init__(
        self,
        per_second: float = 25.0,
        *,
        chat_interval: float = 1.0,
        group_max: int = 20,
        group_period: float = 60.0,
        max_retries: int = 5,
    ) -> None:
        if not 0 < per_second <= TELEGRAM_MAX_PER_SECOND:
            raise ValueError(f"per_second must be in (0, {TELEGRAM_MAX_PER_SECOND:g}]")
        self.overall_interval = 1.0 / per_second
        self.chat_interval = chat_interval
        self.group_max = group_max
        self.group_period = group_period
        self.max_retries = max_retries
        self._next_overall = 0.0
        self._paused_until = 0.0
        self._chats: dict[str, _ChatState] = {}

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to release."""

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, Result]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: SendOptions | None,
    ) -> Result:
        chat_id = data.get("chat_id")
        options = rate_limit_args or SendOptions()
        retries = self.max_retries if options.retries is None else options.retries
        callback = _gated(callback, options.on_wire)
        if chat_id is None:
            return await self._with_retries(lambda: callback(*args, **kwargs), retries, endpoint)
        if endpoint not in MESSAGE_METHODS:
            return await self._with_retries(lambda: self._overall(callback, args, kwargs), retries, endpoint)
        state = self._chat(str(chat_id))
        async with state.lock:  # one message at a time per chat keeps them in order
            return await self._with_retries(
                lambda: self._in_chat(state, is_group(chat_id), callback, args, kwargs), retries, endpoint
            )

    async def _with_retries(self, send: Callable[[], Coroutine[Any, Any, Result]], retries: int, what: str) -> Result:
        for attempt in range(retries + 1):
            try:
                await self._wait_out_pause()
                return await send()
            except RetryAfter as exc:
                pause = retry_seconds(exc)
                # Every request waits, also when this one is handed back to its caller to retry.
                self._paused_until = max(self._paused_until, time.monotonic() + pause + 0.1)
                if attempt == retries:
                    raise
                log.warning("Telegram asked to wait %.1f s (%s); pausing all sends, then retrying", pause, what)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _wait_out_pause(self) -> None:
        # Another RetryAfter may move the end of the pause while we sleep, hence the loop.
        while (delay := self._paused_until - time.monotonic()) > 0:  # noqa: ASYNC110
            await asyncio.sleep(delay)

    async def _overall(self, callback: Callable[..., Coroutine[Any, Any, Result]], args: Any, kwargs: Any) -> Result:
        # Take the next overall slot; taking it before any await keeps the slots unique.
        now = time.monotonic()
        slot = max(now, self._next_overall)
        self._next_overall = slot + self.overall_interval
        if slot > now:
            await asyncio.sleep(slot - now)
        await self._wait_out_pause()
        return await callback(*args, **kwargs)

    async def _in_chat(
        self,
        state: _ChatState,
        group: bool,
        callback: Callable[..., Coroutine[Any, Any, Result]],
        args: Any,
        kwargs: Any,
    ) -> Result:
        await self._sleep_until(state.next_at)
        if group and self.group_max > 0:
            while len(state.recent) >= self.group_max:
                if state.recent[0] + self.group_period <= time.monotonic():
                    state.recent.popleft()
                else:
                    await self._sleep_until(state.recent[0] + self.group_period)
        try:
            return await self._overall(callback, args, kwargs)
        finally:
            sent_at = time.monotonic()
            state.next_at = sent_at + self.chat_interval
            if group:
                state.recent.append(sent_at)

    @staticmethod
    async def _sleep_until(moment: float) -> None:
        delay = moment - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)

    def _chat(self, key: str) -> _ChatState:
        if len(self._chats) > 4096:
            self._forget_idle_chats()
        return self._chats.setdefault(key, _ChatState())

    def _forget_idle_chats(self) -> None:
        now = time.monotonic()
        for key, state in list(self._chats.items()):
            idle = not state.lock.locked() and state.next_at < now
            if idle and (not state.recent or state.recent[-1] + self.group_period < now):
                with contextlib.suppress(KeyError):
                    del self._chats[key]
