"""The circuit breaker, on a hand-moved clock: opens, refuses, half-opens for one probe, closes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from core.config import Settings
from core.gen.backend import ErrorKind, GenerationError
from core.gen.breaker import BreakerState, CircuitBreaker, CircuitOpenError

WALL = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def wall(self) -> datetime:
        return WALL + timedelta(seconds=self.now - 1000.0)


def breaker(clock: Clock, threshold: int = 3, cooldown: float = 30.0, probe_timeout: float = 100.0) -> CircuitBreaker:
    return CircuitBreaker(
        failure_threshold=threshold,
        cooldown_seconds=cooldown,
        probe_timeout_seconds=probe_timeout,
        clock=clock,
        wall_clock=clock.wall,
    )


def retryable() -> GenerationError:
    return GenerationError("The image service had a problem on its side.", retryable=True, kind="server")


async def fail() -> None:
    raise retryable()


async def succeed() -> str:
    return "image"


async def test_it_opens_after_n_consecutive_failures_and_refuses_at_once() -> None:
    clock = Clock()
    b = breaker(clock)
    for _ in range(2):
        with pytest.raises(GenerationError):
            await b.call(fail)
    assert b.state is BreakerState.CLOSED and b.reopens_at is None
    with pytest.raises(GenerationError):
        await b.call(fail)
    assert b.state is BreakerState.OPEN

    clock.now += 10
    called = False

    async def never() -> None:
        nonlocal called
        called = True

    with pytest.raises(CircuitOpenError) as caught:
        await b.call(never)
    assert not called
    err = caught.value
    assert (err.kind, err.retryable, err.retry_after) == (ErrorKind.CIRCUIT_OPEN, True, 20.0)
    assert err.reopens_at == WALL + timedelta(seconds=30)
    assert str(err) == (
        "Image generation is paused for a moment after 3 failures in a row from the image service; "
        "it will try again in about 20 s."
    )
    assert b.reopens_at == WALL + timedelta(seconds=30)
    assert not b.allow()


async def test_a_success_resets_the_count() -> None:
    b = breaker(Clock())
    for _ in range(2):
        with pytest.raises(GenerationError):
            await b.call(fail)
    assert await b.call(succeed) == "image"
    for _ in range(2):
        with pytest.raises(GenerationError):
            await b.call(fail)
    assert b.state is BreakerState.CLOSED
    assert b.consecutive_failures == 2


async def test_non_retryable_errors_do_not_count() -> None:
    b = breaker(Clock(), threshold=1)

    async def refused() -> None:
        raise GenerationError("refused by the content policy", retryable=False, kind="content_policy")

    for _ in range(3):
        with pytest.raises(GenerationError):
            await b.call(refused)
    assert b.state is BreakerState.CLOSED


async def test_after_the_cooldown_one_probe_goes_and_its_success_closes() -> None:
    clock = Clock()
    b = breaker(clock, threshold=1)
    with pytest.raises(GenerationError):
        await b.call(fail)
    clock.now += 30
    assert b.state is BreakerState.HALF_OPEN
    assert b.reopens_in == 0.0

    gate = asyncio.Event()

    async def probe() -> str:
        await gate.wait()
        return "image"

    task = asyncio.create_task(b.call(probe))
    await asyncio.sleep(0)  # the probe is out
    with pytest.raises(CircuitOpenError) as caught:
        await b.call(succeed)  # a second caller waits for the probe
    assert caught.value.retry_after == 5.0
    gate.set()
    assert await task == "image"
    assert b.state is BreakerState.CLOSED
    assert await b.call(succeed) == "image"


async def test_a_failed_probe_opens_it_for_another_cooldown() -> None:
    clock = Clock()
    b = breaker(clock, threshold=2)
    for _ in range(2):
        with pytest.raises(GenerationError):
            await b.call(fail)
    clock.now += 31
    with pytest.raises(GenerationError) as caught:
        await b.call(fail)  # the probe
    assert not isinstance(caught.value, CircuitOpenError)
    assert b.state is BreakerState.OPEN
    assert b.reopens_in == 30.0
    clock.now += 30
    assert b.allow()  # the next probe


async def test_a_cancelled_probe_frees_the_slot() -> None:
    clock = Clock()
    b = breaker(clock, threshold=1)
    with pytest.raises(GenerationError):
        await b.call(fail)
    clock.now += 30
    task = asyncio.create_task(b.call(asyncio.sleep, 10))
    await asyncio.sleep(0)
    assert not b.allow()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert b.state is BreakerState.HALF_OPEN
    assert b.allow()


def test_a_probe_that_never_reports_back_expires() -> None:
    clock = Clock()
    b = breaker(clock, threshold=1, probe_timeout=100)
    b.record_failure()
    clock.now += 30
    assert b.allow()  # the probe goes... and its caller forgets to report
    assert not b.allow()
    clock.now += 99
    assert not b.allow()
    clock.now += 1
    assert b.allow()


def test_step_by_step_use_with_record() -> None:
    clock = Clock()
    b = breaker(clock, threshold=2)
    assert b.allow()
    b.record(retryable())
    assert b.allow()
    b.record(ValueError("a bug of ours"))  # says nothing about the service
    assert b.consecutive_failures == 1
    b.record(retryable())
    assert not b.allow()
    clock.now += 30
    assert b.allow()
    b.record(None)
    assert b.state is BreakerState.CLOSED


def test_built_from_settings() -> None:
    settings = Settings(
        _env_file=None, breaker_failure_threshold=4, breaker_cooldown_seconds=12, generation_timeout_seconds=50
    )
    b = CircuitBreaker.from_settings(settings)
    assert (b.failure_threshold, b.cooldown_seconds, b.probe_timeout_seconds) == (4, 12, 55)


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError):
        CircuitBreaker(failure_threshold=0)
    with pytest.raises(ValueError):
        CircuitBreaker(cooldown_seconds=0)
