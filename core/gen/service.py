"""Turning a prompt into a stored image with the configured backend."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from core.gen.backend import GeneratedImage, ImageBackend, ImageRequest
from core.gen.media import MediaStore
from core.gen.publishable import publishable
from core.gen.sizes import nearest_size


@dataclass(frozen=True, slots=True)
class StoredImage:
    image: GeneratedImage
    path: str  # relative to the media store


class ImageService:
    def __init__(self, backend: ImageBackend, media: MediaStore) -> None:
        self.backend = backend
        self.media = media

    def size_for(self, aspect: str) -> tuple[int, int]:
        return nearest_size(aspect, self.backend.sizes)

    async def create(self, prompt: str, seed: int, aspect: str, author: str) -> StoredImage:
        width, height = self.size_for(aspect)
        generated = await self.backend.generate(ImageRequest(prompt, seed, width, height, author))
        # Whatever the backend sent, the stored image is one every platform can show (or the job fails).
        image = await asyncio.to_thread(publishable, generated)
        path = await self.media.save(image.data, image.extension)
        return StoredImage(image, path)
