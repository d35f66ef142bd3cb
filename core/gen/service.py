"""Turning a prompt into a stored image with the configured backend."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from core.gen.backend import GeneratedImage, ImageBackend, ImageRequest
from core.gen.media import MediaStore
from core.gen.publishable import publishable
from core.gen.sizes import nearest_size
from core.provenance import pixel_hash


@dataclass(frozen=True, slots=True)
class MadeImage:
    """A publishable image, not stored yet: the queue stores it once, signed (core.gen.queue)."""

    image: GeneratedImage
    pixels: str  # core.provenance.pixel_hash, worked out here, off the queue's write turn
    from_source: bool = False  # the backend started from the given picture


class ImageService:
    def __init__(self, backend: ImageBackend, media: MediaStore) -> None:
        self.backend = backend
        self.media = media

    def size_for(self, aspect: str) -> tuple[int, int]:
        return nearest_size(aspect, self.backend.sizes)

    @property
    def edits(self) -> bool:
        return bool(getattr(self.backend, "edits", False))

    async def create(self, prompt: str, seed: int, aspect: str, author: str, source: bytes | None = None) -> MadeImage:
        """`source`, a picture to start from, is used when the backend can; else the prompt alone.
        Not stored: the signature that goes into the file names the post, which the caller makes."""
        width, height = self.size_for(aspect)
        start = source if self.edits else None
        generated = await self.backend.generate(ImageRequest(prompt, seed, width, height, author, source=start))
        # Whatever the backend sent, the stored image is one every platform can show (or the job fails).
        # One thread hop for both: each hop costs the event loop a round of scheduling.
        image, pixels = await asyncio.to_thread(_publishable_with_hash, generated)
        return MadeImage(image, pixels, from_source=start is not None)


def _publishable_with_hash(generated: GeneratedImage) -> tuple[GeneratedImage, str]:
    image = publishable(generated)
    return image, pixel_hash(image.data)
