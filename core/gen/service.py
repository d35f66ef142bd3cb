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
class StoredImage:
    image: GeneratedImage
    path: str  # relative to the media store
    from_source: bool = False  # the backend started from the given picture
    pixels: str | None = None  # core.provenance.pixel_hash, worked out here, off the queue's write turn


class ImageService:
    def __init__(self, backend: ImageBackend, media: MediaStore) -> None:
        self.backend = backend
        self.media = media

    def size_for(self, aspect: str) -> tuple[int, int]:
        return nearest_size(aspect, self.backend.sizes)

    @property
    def edits(self) -> bool:
        return bool(getattr(self.backend, "edits", False))

    async def create(
        self, prompt: str, seed: int, aspect: str, author: str, source: bytes | None = None
    ) -> StoredImage:
        """`source`, a picture to start from, is used when the backend can; else the prompt alone."""
        width, height = self.size_for(aspect)
        start = source if self.edits else None
        generated = await self.backend.generate(ImageRequest(prompt, seed, width, height, author, source=start))
        # Whatever the backend sent, the stored image is one every platform can show (or the job fails).
        image = await asyncio.to_thread(publishable, generated)
        path = await self.media.save(image.data, image.extension)
        pixels = await asyncio.to_thread(pixel_hash, image.data)
        return StoredImage(image, path, from_source=start is not None, pixels=pixels)
