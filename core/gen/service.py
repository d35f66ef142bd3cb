"""Turning a prompt into a stored image with the configured backend."""

from __future__ import annotations

from dataclasses import dataclass

from core.gen.backend import GeneratedImage, ImageBackend, ImageRequest
from core.gen.media import MediaStore
from core.gen.publishable import publishable
from core.gen.sizes import nearest_size
from core.provenance import pixel_hash


@dataclass(frozen=True, slots=True)
class StoredImage:
    """A publishable image in the media store, signed for post `post_id` when signing is on."""

    image: GeneratedImage
    pixels: str  # core.provenance.pixel_hash, worked out off the queue's write turn
    path: str  # relative to the media store
    post_id: int | None  # the id reserved for the post the signature names; None: not signed
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

    async def create(
        self, prompt: str, seed: int, aspect: str, author: str, source: bytes | None = None
    ) -> tuple[GeneratedImage, bool]:
        """The backend's image, and whether it started from `source` (used when the backend can; else
        the prompt alone). Not made publishable nor stored here: core.gen.queue does both, and signs the
        file, in one thread hop (the signature names the post)."""
        width, height = self.size_for(aspect)
        start = source if self.edits else None
        generated = await self.backend.generate(ImageRequest(prompt, seed, width, height, author, source=start))
        return generated, start is not None


def publishable_with_hash(generated: GeneratedImage) -> tuple[GeneratedImage, str]:
    """Whatever the backend sent, the stored image is one every platform can show (or the job fails);
    and its pixels' hash, for the signature (blocking)."""
    image = publishable(generated)
    return image, pixel_hash(image.data)
