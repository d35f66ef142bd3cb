"""Number types for the benchmarks' command lines: a bad value is refused in argparse's one line
("argument --jobs: must be at least 1") instead of ending in a traceback halfway through a run."""

from __future__ import annotations

import argparse
import math


def _number(value: str, kind: type[int] | type[float], example: str) -> float:
    try:
        number = kind(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"use {example}, not {value!r}") from None
    if not math.isfinite(number):
        raise argparse.ArgumentTypeError(f"use {example}, not {value!r}")
    return number


def positive_int(value: str) -> int:
    """A whole number of at least 1."""
    number = int(_number(value, int, "a whole number such as 8"))
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return number


def count(value: str) -> int:
    """A whole number of at least 0."""
    number = int(_number(value, int, "a whole number such as 8"))
    if number < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {value}")
    return number


def positive(value: str) -> float:
    """A number above 0 (seconds, a rate, a scale)."""
    number = _number(value, float, "a number such as 0.5")
    if number <= 0:
        raise argparse.ArgumentTypeError(f"must be above 0, not {value}")
    return number


def non_negative(value: str) -> float:
    """A number of at least 0 (a latency that may be none)."""
    number = _number(value, float, "a number such as 0.005")
    if number < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {value}")
    return number
