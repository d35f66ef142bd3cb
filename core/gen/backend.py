"""The interface every image backend implements, local or remote."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class ImageRequest:
    prompt: str
    seed: int
    width: int = 1024
    height: int = 1024
    author: str = ""


@dataclass(frozen=True, slots=True)
class GeneratedImage:
    data: bytes
    extension: str  # "png", "jpeg", "webp"
    width: int
    height: int
    seed: int
    backend: str
    model: str
    revised_prompt: str | None = None


class GenerationError(Exception):
    """The backend could not make the image. `retryable` says whether trying again may help."""

    def __init__(self, message: str, *, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


class ImageBackend(Protocol):
    name: str
    model: str
    # Sizes this backend accepts, by aspect-ratio name ("1:1", "16:9", ...), as (width, height).
    sizes: dict[str, tuple[int, int]]
    # Whether the same seed reproduces the same image.
    honours_seed: bool

    async def generate(self, request: ImageRequest) -> GeneratedImage: ...

    async def aclose(self) -> None: ...
