"""A fake remote image service for the generation benchmark: a fixed latency, then a tiny PNG.

Every answer is a distinct file (the request's seed and prompt go into a PNG text chunk), so the media
store writes and syncs one new file per job, as it would for a real service, without the cost of a
real image.
"""

from __future__ import annotations

import asyncio
import io
import struct
import time
import zlib
from typing import ClassVar

from PIL import Image

from core.gen.backend import GeneratedImage, ImageRequest
from core.gen.local import LocalBackend

SIDE = 64


def _tiny_png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (SIDE, SIDE), (220, 110, 40)).save(out, format="PNG")
    return out.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


class FakeRemoteBackend:
    """Implements core.gen.backend.ImageBackend; it waits `latency` seconds per call (asyncio.sleep, as
    a network call would). It counts how many calls overlap, to show the queue really ran C at once, and
    notes when calls start and end, for the workers' turnaround between two images."""

    name = "fake-remote"
    model = "fake-1"
    honours_seed = True
    edits = False
    sizes: ClassVar[dict[str, tuple[int, int]]] = LocalBackend.sizes

    def __init__(self, latency: float) -> None:
        self.latency = latency
        self.calls = 0
        self.running = 0
        self.max_running = 0
        self.starts: list[float] = []  # perf_counter
        self.ends: list[float] = []
        png = _tiny_png()
        self._head, self._tail = png[:33], png[33:]  # the 8-byte signature and IHDR, then the rest

    async def generate(self, request: ImageRequest) -> GeneratedImage:
        self.calls += 1
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        self.starts.append(time.perf_counter())
        try:
            await asyncio.sleep(self.latency)
        finally:
            self.running -= 1
            self.ends.append(time.perf_counter())
        text = b"request\0" + f"{request.seed} {request.prompt}".encode()
        data = self._head + _chunk(b"tEXt", text) + self._tail
        return GeneratedImage(data, "png", SIDE, SIDE, request.seed, self.name, self.model)

    def turnaround(self, workers: int) -> float | None:
        """Mean seconds a worker spends between the end of one call and the start of its next: storing
        the image, committing the post and the job, taking the next job, and any wait for a wake-up.

        Which worker made which call is not needed for the mean: while jobs are queued no worker idles,
        every worker's first call is among the first `workers` to start (they all start within one
        latency) and its last among the last `workers` to end, so the gaps sum to the other starts
        minus the other ends. None when no worker made two calls."""
        starts, ends = sorted(self.starts), sorted(self.ends)
        pairs = len(starts) - workers
        if pairs <= 0 or len(ends) != len(starts):
            return None
        return (sum(starts[workers:]) - sum(ends[:-workers])) / pairs

    def forget(self) -> None:
        """Drop what was counted so far (the benchmark's warm-up)."""
        self.calls = self.max_running = 0
        self.starts, self.ends = [], []

    async def aclose(self) -> None:
        return None
