"""A token bucket per person for every command: RATE_LIMIT_BURST at once, then
RATE_LIMIT_PER_MINUTE. Kept in memory, per process: a limit on abuse, not an account balance."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

# A press of the same button again within this long, while the bucket is empty, is the same press.
COALESCE_SECONDS = 5.0
MAX_TRACKED = 10_000  # above this, people whose bucket has refilled are forgotten


@dataclass
class RateLimiter:
    burst: int
    per_second: float
    clock: Callable[[], float] = time.monotonic
    _buckets: dict[int, tuple[float, float]] = field(default_factory=dict)  # person -> (tokens, at)
    _presses: dict[int, tuple[str, float]] = field(default_factory=dict)  # person -> (action, at)

    def take(self, person_id: int) -> float:
        """0 when the command may run (a token is used), otherwise the seconds until it may."""
        now = self.clock()
        tokens = self._tokens(person_id, now)
        if tokens >= 1:
            self._buckets[person_id] = (tokens - 1, now)
            self._forget_some(now)
            return 0.0
        self._buckets[person_id] = (tokens, now)
        return (1 - tokens) / self.per_second

    def repeated_press(self, person_id: int, action: str) -> bool:
        """Whether this press repeats the person's last press of the same button, just now."""
        now = self.clock()
        last = self._presses.get(person_id)
        self._presses[person_id] = (action, now)
        return last is not None and last[0] == action and now - last[1] < COALESCE_SECONDS

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
