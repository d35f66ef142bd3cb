"""A token bucket per person for every command: RATE_LIMIT_BURST at once, then
RATE_LIMIT_PER_MINUTE. Kept in memory, per process: a limit on abuse, not an account balance."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

# A press of the same button again within this long of one that ran, while the bucket is empty, is that press.
COALESCE_SECONDS = 5.0
# Within this long it is that press even with tokens to spare: a double tap on a slow connection
# must not like and unlike at once. Longer would swallow a deliberate undo.
DOUBLE_PRESS_SECONDS = 1.0
MAX_TRACKED = 10_000  # above this, people whose bucket has refilled are forgotten


@dataclass
class RateLimiter:
    burst: int
    per_second: float
    clock: Callable[[], float] = time.monotonic
    _buckets: dict[int, tuple[float, float]] = field(default_factory=dict)  # person -> (tokens, at)
    _presses: dict[int, tuple[str, float]] = field(default_factory=dict)  # person -> (action, at)

    def take(self, person_id: int, press: str | None = None) -> float:
        """0 when the command may run (a token is used), otherwise the seconds until it may. A button
        press that runs is remembered: its repeats in a burst are then coalesced with it."""
        now = self.clock()
        tokens = self._tokens(person_id, now)
        if tokens >= 1:
            self._buckets[person_id] = (tokens - 1, now)
            if press is not None:
                self._presses[person_id] = (press, now)
            self._forget_some(now)
            return 0.0
        self._buckets[person_id] = (tokens, now)
        return (1 - tokens) / self.per_second

    def repeated_press(self, person_id: int, action: str, within: float = COALESCE_SECONDS) -> bool:
        """Whether this press repeats the person's last press that ran, less than `within` seconds
        ago. Only one that ran: a repeat of a refused press is refused as well, not acknowledged as
        if it had been taken. A repeat keeps the burst going, so a long hammering stays one press."""
        now = self.clock()
        last = self._presses.get(person_id)
        if last is None or last[0] != action or now - last[1] >= within:
            return False
        self._presses[person_id] = (action, now)
        return True

    def _tokens(self, person_id: int, now: float) -> float:
        tokens, at = self._buckets.get(person_id, (float(self.burst), now))
        return min(float(self.burst), tokens + (now - at) * self.per_second)

    def _forget_some(self, now: float) -> None:
        if len(self._buckets) <= MAX_TRACKED:
            return
        full = [p for p in self._buckets if self._tokens(p, now) >= self.burst]
        for person_id in full:
            del self._buckets[person_id]
            self._presses.pop(person_id, None)


def wait_line(seconds: float) -> str:
    return f"Slow down a little: try again in {max(1, math.ceil(seconds))} s."
