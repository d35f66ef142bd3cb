"""A small circuit breaker for the image service.

When the service keeps failing (5xx, timeouts, rate limits), hammering it helps nobody: jobs fail slowly and
the service recovers later. After `failure_threshold` retryable failures in a row the breaker *opens*: calls
are refused at once with `CircuitOpenError` (a retryable `GenerationError` whose `retry_after` says when it
reopens). After `cooldown_seconds` it is *half-open*: exactly one call goes through as a probe while others
are still refused; the probe's success closes the breaker, its failure opens it for another cool-down.

Only retryable `GenerationError`s count as failures. A non-retryable one (content policy, quota, a bad
request) proves the service is up and answering, so it counts as a success for the breaker's purposes.

Two ways to use it: `await breaker.call(backend.generate, request)` does everything; or, step by step,
`if breaker.allow(): ...` then exactly one of `record_success()` / `record_failure()` / `release()` (or
`record(exc)`, which picks). A probe that never reports back (a caller that forgot) frees its slot after
`probe_timeout_seconds`, so the breaker cannot stay stuck half-open.

Pure logic with an injectable clock (any `() -> float` in seconds, `time.monotonic` by default) and wall
clock (for `reopens_at`), so tests move time by hand. Asyncio runs one task at a time and no state change
awaits, so no lock is needed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, ParamSpec, TypeVar

from core.gen.backend import ErrorKind, GenerationError

if TYPE_CHECKING:
    from core.config import Settings

P = ParamSpec("P")
T = TypeVar("T")


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitOpenError(GenerationError):
    """Refused without calling the service. `retry_after` is the number of seconds until it may let a call
    through; `reopens_at` the same moment as an aware UTC datetime."""

    def __init__(self, message: str, *, retry_after: float, reopens_at: datetime) -> None:
        super().__init__(message, retryable=True, retry_after=retry_after, kind=ErrorKind.CIRCUIT_OPEN)
        self.reopens_at = reopens_at


class CircuitBreaker:
    def __init__(
        self,
        *,
        failure_threshold: int = 5,
        cooldown_seconds: float = 60.0,
        probe_timeout_seconds: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        name: str = "the image service",
    ) -> None:
        if failure_threshold < 1 or cooldown_seconds <= 0 or probe_timeout_seconds <= 0:
            raise ValueError("failure_threshold must be >= 1, cooldown_seconds and probe_timeout_seconds > 0")
        self.failure_threshold = failure_threshold
        self.cooldown_seconds = cooldown_seconds
        self.probe_timeout_seconds = probe_timeout_seconds
        self.name = name
        self._clock = clock
        self._wall_clock = wall_clock
        self._failures = 0
        self._opened_at: float | None = None
        self._probe_started: float | None = None

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> CircuitBreaker:
        return cls(
            failure_threshold=settings.breaker_failure_threshold,
            cooldown_seconds=settings.breaker_cooldown_seconds,
            # A probe is a real generation; give it as long as one may take before assuming it was lost.
            probe_timeout_seconds=settings.generation_timeout_seconds + 5,
            clock=clock,
            wall_clock=wall_clock,
        )

    # --- state ---------------------------------------------------------------------------------------------

    def _probe_out(self, now: float) -> bool:
        return self._probe_started is not None and now - self._probe_started < self.probe_timeout_seconds

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self._clock() < self._opened_at + self.cooldown_seconds:
            return BreakerState.OPEN
        return BreakerState.HALF_OPEN

    @property
    def consecutive_failures(self) -> int:
        return self._failures

    @property
    def reopens_in(self) -> float | None:
        """Seconds until a call may be let through; None when closed, 0 when a probe may go now."""
        if self._opened_at is None:
            return None
        now = self._clock()
        wait = self._opened_at + self.cooldown_seconds - now
        if wait > 0:
            return wait
        if self._probe_out(now):
            assert self._probe_started is not None
            # Half-open with the probe still out: look again soon (its answer, or its timeout, decides).
            return min(self.cooldown_seconds, 5.0, self._probe_started + self.probe_timeout_seconds - now)
        return 0.0

    @property
    def reopens_at(self) -> datetime | None:
        """`reopens_in` as an aware UTC datetime (what a scheduler wants); None when closed."""
        wait = self.reopens_in
        return None if wait is None else self._wall_clock() + timedelta(seconds=wait)

    # --- gatekeeping ---------------------------------------------------------------------------------------

    def allow(self) -> bool:
        """May a call go out now? True reserves it: in the half-open state the first caller becomes the
        probe and everyone else is refused until it reports back (or its slot times out)."""
        if self._opened_at is None:
            return True
        now = self._clock()
        if now < self._opened_at + self.cooldown_seconds or self._probe_out(now):
            return False
        self._probe_started = now
        return True

    def before_call(self) -> None:
        """Like `allow`, but raise `CircuitOpenError` (with the reason and when it reopens) on refusal."""
        if self.allow():
            return
        wait = self.reopens_in or 0.0
        raise CircuitOpenError(
            f"Image generation is paused for a moment after {self._failures} failures in a row from "
            f"{self.name}; it will try again in about {max(math.ceil(wait), 1)} s.",
            retry_after=wait,
            reopens_at=self._wall_clock() + timedelta(seconds=wait),
        )

    def record_success(self) -> None:
        self._failures = 0
        self._opened_at = None
        self._probe_started = None

    def record_failure(self) -> None:
        self._failures += 1
        was_probe = self._probe_started is not None
        self._probe_started = None
        if was_probe or self._failures >= self.failure_threshold:
            self._opened_at = self._clock()

    def release(self) -> None:
        """The reserved call ended without telling us anything (it was cancelled): free the probe slot."""
        self._probe_started = None

    def record(self, exc: BaseException | None) -> None:
        """Record an outcome: None is success; a retryable GenerationError is a failure; any other
        GenerationError is a success (a refusal still shows the service is up and answering); anything
        else (cancellation, a bug of ours) says nothing about the service and only frees the slot."""
        if exc is None:
            self.record_success()
        elif isinstance(exc, GenerationError) and exc.retryable:
            self.record_failure()
        elif isinstance(exc, GenerationError):
            self.record_success()
        else:
            self.release()

    async def call(self, fn: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
        """`await breaker.call(backend.generate, request)`: refuse with CircuitOpenError, or run the call
        and record its outcome."""
        self.before_call()
        try:
            result = await fn(*args, **kwargs)
        except BaseException as exc:
            self.record(exc)
            raise
        self.record_success()
        return result
