"""The interface every image backend implements, local or remote."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


@dataclass(frozen=True, slots=True)
class ImageRequest:
    prompt: str
    seed: int
    width: int = 1024
    height: int = 1024
    author: str = ""
    # A picture to start from (a remix's parent, a person's photo); only sent to a backend that `edits`.
    source: bytes | None = None


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


class ErrorKind(StrEnum):
    """Why a generation failed, so the queue can treat each cause differently (compares equal to its string)."""

    CONTENT_POLICY = "content_policy"  # the service refused the prompt; never retry
    QUOTA_EXHAUSTED = "quota_exhausted"  # the account is out of credit; retrying will not help until topped up
    RATE_LIMITED = "rate_limited"  # too many requests; retry after `retry_after` seconds
    SERVER = "server"  # 5xx or a malformed answer; retry
    TIMEOUT = "timeout"  # no answer in time; retry
    CONNECTION = "connection"  # the service could not be reached; retry
    CIRCUIT_OPEN = "circuit_open"  # our circuit breaker is refusing calls for a while; retry after `retry_after`
    AUTH = "auth"  # the API key was rejected; an admin must fix the configuration
    REJECTED = "rejected"  # any other 4xx: the request itself is wrong; never retry
    UNKNOWN = "unknown"


class GenerationError(Exception):
    """The backend could not make the image. `retryable` says whether trying again may help.

    The message is safe to show a person: no secrets, no stack trace."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        retry_after: float | None = None,
        kind: ErrorKind | str = ErrorKind.UNKNOWN,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after
        self.kind = ErrorKind(kind)


class ImageBackend(Protocol):
    name: str
    model: str

    # Sizes this backend accepts, by aspect-ratio name ("1:1", "16:9", ...), as (width, height).
    # Read-only, so a backend may keep them on the class (a ClassVar) or per instance.
    @property
    def sizes(self) -> dict[str, tuple[int, int]]: ...

    # Whether the same seed reproduces the same image.
    honours_seed: bool

    # Whether it can start from a picture (ImageRequest.source); without it a remix is made from its prompt.
    edits: bool

    async def generate(self, request: ImageRequest) -> GeneratedImage: ...

    async def aclose(self) -> None: ...
