"""Aspect ratios people may ask for, mapped to the nearest size a backend supports."""

from __future__ import annotations

import math

from core.errors import UserError

ASPECT_RATIOS: dict[str, float] = {"1:1": 1.0, "16:9": 16 / 9, "9:16": 9 / 16, "3:2": 3 / 2, "2:3": 2 / 3}


def parse_aspect_ratio(value: str) -> str:
    if value not in ASPECT_RATIOS:
        raise UserError(f"Unknown aspect ratio {value!r}. Use one of: {', '.join(ASPECT_RATIOS)}.")
    return value


def nearest_size(aspect: str, sizes: dict[str, tuple[int, int]]) -> tuple[int, int]:
    """The backend's size whose ratio is closest to the requested one (compared on a log scale)."""
    if aspect in sizes:
        return sizes[aspect]
    wanted = math.log(ASPECT_RATIOS[aspect])
    return min(sizes.values(), key=lambda wh: abs(math.log(wh[0] / wh[1]) - wanted))


def aspect_of(width: int, height: int) -> str:
    """The named aspect ratio closest to an image's shape (a variation keeps its parent's shape)."""
    ratio = math.log(width / height)
    return min(ASPECT_RATIOS, key=lambda name: abs(math.log(ASPECT_RATIOS[name]) - ratio))
