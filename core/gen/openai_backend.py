"""Images from OpenAI's image API (or any server that speaks it, via OPENAI_BASE_URL).

The model, quality and output format come from settings and are checked against what the model accepts
when the backend is built, so a bad combination stops start-up with one line (ConfigError) instead of
failing every job later. The SDK's own retries are off (`max_retries=0`): the generation queue decides
when to try again, using the `GenerationError` this module raises (`kind`, `retryable`, `retry_after`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import email.utils
import io
import logging
import math
import struct
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime

import aiohttp
import openai
from PIL import Image

from core.config import ConfigError, Settings
from core.gen.backend import ErrorKind, GeneratedImage, GenerationError, ImageRequest
from core.gen.publishable import FORMATS, inspect
from core.gen.sizes import ASPECT_RATIOS

log = logging.getLogger(__name__)

STANDARD_SIZES: tuple[tuple[int, int], ...] = ((1024, 1024), (1536, 1024), (1024, 1536))
GPT_QUALITIES = frozenset({"low", "medium", "high", "auto"})
GPT_FORMATS = frozenset({"png", "jpeg", "webp"})

# Models that take any WIDTHxHEIGHT with both sides multiples of 16 and a ratio between 1:3 and 3:1
# (the SDK's documentation for `size`, openai 3.57), within pixel and edge limits (OpenAI's image guide).
FLEXIBLE_SIZE_MODELS = frozenset(
    {
        "gpt-image-2",
        "gpt-image-2-2026-04-21",
        "gpt-image-2.5-sunburst",
        "gpt-image-2.5-sunburst-2026-09-08",
        "gpt-image-2.5-flare",
        "gpt-image-2.5-flare-2026-09-08",
    }
)
# Exact ratios, multiples of 16, about 1.3-1.6 megapixels: within every flexible model's limits.
FLEXIBLE_SIZES: dict[str, tuple[int, int]] = {
    "1:1": (1024, 1024),
    "16:9": (1536, 864),
    "9:16": (864, 1536),
    "3:2": (1536, 1024),
    "2:3": (1024, 1536),
}
MAX_EDGE = 3840
MIN_PIXELS, MAX_PIXELS = 655_360, 3840 * 2160
RETIRED_MODELS: dict[str, str] = {
    "gpt-image-1": "was shut down on 23 October 2026",
    "dall-e-2": "was retired on 12 May 2026",
    "dall-e-3": "was retired on 12 May 2026",
}
CONTENT_POLICY_CODES = frozenset({"content_policy_violation", "moderation_blocked"})
QUOTA_CODES = frozenset({"insufficient_quota", "billing_hard_limit_reached"})
MAX_DOWNLOAD_BYTES = 64 * 1024 * 1024
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
STAMP_KEYS = ("prompt", "seed", "backend", "author")
UNREADABLE_ANSWER = "The image service sent an answer we could not read."


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """What a model accepts."""

    name: str
    flexible_sizes: bool
    qualities: frozenset[str] = GPT_QUALITIES
    formats: frozenset[str] = GPT_FORMATS

    def accepts_size(self, width: int, height: int) -> bool:
        if (width, height) in STANDARD_SIZES:
            return True
        if not self.flexible_sizes:
            return False
        return (
            width % 16 == 0
            and height % 16 == 0
            and 1 / 3 <= width / height <= 3
            and max(width, height) <= MAX_EDGE
            and MIN_PIXELS <= width * height <= MAX_PIXELS
        )

    def sizes(self) -> dict[str, tuple[int, int]]:
        if self.flexible_sizes:
            return dict(FLEXIBLE_SIZES)

        def nearest(ratio: float) -> tuple[int, int]:
            return min(STANDARD_SIZES, key=lambda wh: abs(math.log(wh[0] / wh[1]) - math.log(ratio)))

        return {aspect: nearest(ratio) for aspect, ratio in ASPECT_RATIOS.items()}


def model_spec(model: str, *, custom_server: bool = False) -> ModelSpec:
    """The spec for a configured model; raises ConfigError for one OpenAI no longer serves.

    An unknown model name (a newer model, or one on an OpenAI-compatible server) gets the three standard
    sizes, which every GPT image model accepts. A custom server may still serve a retired model's name."""
    if model in RETIRED_MODELS and not custom_server:
        raise ConfigError(
            f"Invalid setting OPENAI_IMAGE_MODEL: {model} {RETIRED_MODELS[model]}; use gpt-image-2 or a newer model"
        )
    return ModelSpec(model, flexible_sizes=model in FLEXIBLE_SIZE_MODELS)


def validate_settings(settings: Settings) -> ModelSpec:
    """Check the configured model, quality and format together; one ConfigError line if they do not fit."""
    if settings.openai_api_key is None and not settings.openai_base_url:
        raise ConfigError("Invalid setting OPENAI_API_KEY: it is required for the openai image backend")
    model = settings.openai_image_model.strip()
    if not model:
        raise ConfigError("Invalid setting OPENAI_IMAGE_MODEL: it must name an image model, e.g. gpt-image-2")
    spec = model_spec(model, custom_server=bool(settings.openai_base_url))
    if settings.openai_image_quality not in spec.qualities:
        raise ConfigError(
            f"Invalid setting OPENAI_IMAGE_QUALITY: {model} accepts {', '.join(sorted(spec.qualities))}, "
            f"not {settings.openai_image_quality!r}"
        )
    if settings.openai_output_format not in spec.formats:
        raise ConfigError(
            f"Invalid setting OPENAI_OUTPUT_FORMAT: {model} accepts {', '.join(sorted(spec.formats))}, "
            f"not {settings.openai_output_format!r}"
        )
    for aspect, (width, height) in spec.sizes().items():
        if not spec.accepts_size(width, height):  # guards edits to the size tables above
            raise ConfigError(
                f"Invalid setting OPENAI_IMAGE_MODEL: {model} does not accept {width}x{height} ({aspect})"
            )
    return spec


# --- errors ---------------------------------------------------------------------------------------------


def parse_retry_after(headers: object, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from `retry-after-ms`, or `Retry-After` as seconds or an HTTP date; None if absent."""
    get = getattr(headers, "get", None)
    if get is None:
        return None
    millis = get("retry-after-ms")
    if millis:
        try:
            return max(float(millis) / 1000, 0.0)
        except ValueError:
            pass
    value = get("retry-after")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - (now or datetime.now(UTC))).total_seconds(), 0.0)


def classify(exc: BaseException) -> GenerationError:
    """Turn an SDK (or download) exception into a GenerationError with a message fit for a person."""
    if isinstance(exc, GenerationError):
        return exc
    if isinstance(exc, openai.APITimeoutError | TimeoutError):
        return GenerationError("The image service took too long to answer.", retryable=True, kind=ErrorKind.TIMEOUT)
    if isinstance(exc, openai.APIConnectionError | aiohttp.ClientError):
        return GenerationError("The image service could not be reached.", retryable=True, kind=ErrorKind.CONNECTION)
    if isinstance(exc, openai.APIStatusError):
        return _classify_status(exc)
    if isinstance(exc, openai.APIResponseValidationError | ValueError):
        return GenerationError(UNREADABLE_ANSWER, retryable=True, kind=ErrorKind.SERVER)
    return GenerationError("Something went wrong while making the image.", retryable=True, kind=ErrorKind.UNKNOWN)


def _classify_status(exc: openai.APIStatusError) -> GenerationError:
    code, status = exc.code, exc.status_code
    retry_after = parse_retry_after(exc.response.headers)
    if code in QUOTA_CODES:
        return GenerationError(
            "The image service account is out of credit, so no new images can be made until an admin tops it up.",
            retryable=False,
            kind=ErrorKind.QUOTA_EXHAUSTED,
        )
    if code in CONTENT_POLICY_CODES:
        return GenerationError(
            "The image service refused this prompt under its content policy. Try describing it differently.",
            retryable=False,
            kind=ErrorKind.CONTENT_POLICY,
        )
    if isinstance(exc, openai.RateLimitError):
        return GenerationError(
            "The image service is busy right now.",
            retryable=True,
            retry_after=retry_after,
            kind=ErrorKind.RATE_LIMITED,
        )
    if status >= 500:
        return GenerationError(
            "The image service had a problem on its side.",
            retryable=True,
            retry_after=retry_after,
            kind=ErrorKind.SERVER,
        )
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        return GenerationError(
            "The image service did not accept our credentials; an admin needs to check the API key.",
            retryable=False,
            kind=ErrorKind.AUTH,
        )
    if status == 408:  # request timeout: the server gave up waiting on us
        return GenerationError("The image service took too long to answer.", retryable=True, kind=ErrorKind.TIMEOUT)
    return GenerationError(
        f"The image service could not make this image (HTTP {status}).", retryable=False, kind=ErrorKind.REJECTED
    )


def _log_failure(exc: BaseException, error: GenerationError) -> None:
    """Enough to debug from the logs, and never the key: auth errors can echo part of it, so skip their text."""
    if isinstance(exc, openai.APIStatusError):
        detail = "" if error.kind is ErrorKind.AUTH else f": {exc.message[:300]}"
        log.warning(
            "image generation failed: %s (HTTP %s, code %s, request id %s)%s",
            error.kind.value,
            exc.status_code,
            exc.code,
            exc.request_id,
            detail,
        )
    elif isinstance(exc, ValueError):
        log.warning("image generation failed: %s (an answer that is not valid JSON: %s)", error.kind.value, exc)
    else:
        log.warning("image generation failed: %s (%s)", error.kind.value, type(exc).__name__)


def _image_item(response: object) -> openai.types.Image:
    """The answer's one image. Without strict validation the SDK hands back whatever came: the text of
    an HTML error page, a list, or an ImagesResponse whose fields hold anything."""
    data = getattr(response, "data", None) if isinstance(response, openai.types.ImagesResponse) else None
    item = data[0] if isinstance(data, list) and data else None
    if isinstance(item, openai.types.Image):
        if isinstance(item.b64_json, str) and item.b64_json:
            return item
        if isinstance(item.url, str) and item.url and not item.b64_json:
            return item
    log.warning("image generation failed: server (an answer without an image: %s)", _sketch(response))
    raise GenerationError(UNREADABLE_ANSWER, retryable=True, kind=ErrorKind.SERVER)


def _sketch(answer: object) -> str:
    """A short, one-line description of an unexpected answer for the log."""
    if isinstance(answer, str):
        return f"text {' '.join(answer.split())[:80]!r}"
    if isinstance(answer, openai.types.ImagesResponse):
        return f"data={type(answer.data).__name__}"
    return type(answer).__name__


# --- PNG metadata -----------------------------------------------------------------------------------------


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _text_chunk(key: str, value: str) -> bytes:
    # Like Pillow's PngInfo.add_text: tEXt when Latin-1 can hold the value, otherwise UTF-8 iTXt.
    try:
        return _png_chunk(b"tEXt", key.encode("latin-1") + b"\0" + value.encode("latin-1"))
    except UnicodeEncodeError:
        return _png_chunk(b"iTXt", key.encode("latin-1") + b"\0\0\0" + b"\0" + b"\0" + value.encode("utf-8"))


def stamp_png(data: bytes, text: dict[str, str]) -> bytes:
    """Add text chunks right after IHDR without touching the pixels (no re-encoding). Chunks the server
    already wrote under the same keys are dropped, so nobody else can set our prompt/author fields."""
    if not data.startswith(PNG_SIGNATURE):
        raise ValueError("not a PNG")
    out = bytearray(PNG_SIGNATURE)
    pos = len(PNG_SIGNATURE)
    keys = {key.encode("latin-1") for key in text}
    first = True
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        end = pos + 12 + length
        if end > len(data):
            raise ValueError("truncated PNG")
        chunk = data[pos:end]
        pos = end
        if kind in (b"tEXt", b"iTXt", b"zTXt") and chunk[8:].split(b"\0", 1)[0] in keys:
            continue
        out += chunk
        if first:  # IHDR must stay first; our chunks follow it
            first = False
            for key, value in text.items():
                out += _text_chunk(key, value)
    return bytes(out)


# --- the backend ------------------------------------------------------------------------------------------


class OpenAIBackend:
    name = "openai"
    honours_seed = False

    def __init__(self, settings: Settings, *, client: openai.AsyncOpenAI | None = None) -> None:
        self.spec = validate_settings(settings)
        self.model = self.spec.name
        self.sizes: dict[str, tuple[int, int]] = self.spec.sizes()
        # Every GPT image model takes pictures through the edits endpoint; other names (a compatible
        # server's own model) are not assumed to.
        self.edits = self.model.startswith("gpt-image")
        self.quality = settings.openai_image_quality
        self.output_format = settings.openai_output_format
        self.timeout = settings.generation_timeout_seconds
        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else "unused"
        self._client = client or openai.AsyncOpenAI(
            api_key=key,  # "unused": an OpenAI-compatible server at OPENAI_BASE_URL that wants no key
            base_url=settings.openai_base_url or None,
            timeout=self.timeout,
            max_retries=0,  # the generation queue retries, with its own backoff and the breaker
        )
        self._owns_client = client is None
        self._http: aiohttp.ClientSession | None = None

    def size_for(self, width: int, height: int) -> tuple[int, int]:
        """The requested size if the model takes it, else the model's size with the nearest ratio."""
        if self.spec.accepts_size(width, height):
            return width, height
        wanted = math.log(width / height)
        return min(self.sizes.values(), key=lambda wh: abs(math.log(wh[0] / wh[1]) - wanted))

    async def generate(self, request: ImageRequest) -> GeneratedImage:
        width, height = self.size_for(request.width, request.height)
        try:
            # One deadline for the whole job (request and any download), on top of the SDK's own timeout.
            async with asyncio.timeout(self.timeout):
                response = await self._request(request, f"{width}x{height}")
                item = _image_item(response)
                data = await self._image_bytes(item.b64_json, item.url)
        except (openai.OpenAIError, aiohttp.ClientError, TimeoutError, ValueError) as exc:
            # ValueError: a body announced as JSON that is not (the SDK's json.loads fails).
            error = classify(exc)
            _log_failure(exc, error)
            raise error from None  # the cause may carry request details; the queue needs only the error
        return self._finish(data, request, item.revised_prompt if isinstance(item.revised_prompt, str) else None)

    async def _request(self, request: ImageRequest, size: str) -> object:
        if request.source is not None and self.edits:
            extension = inspect(request.source)[0]
            return await self._client.images.edit(
                model=self.model,
                image=(f"source.{extension}", request.source, f"image/{extension}"),
                prompt=request.prompt,
                n=1,
                size=size,
                quality=self.quality,
                output_format=self.output_format,
            )
        return await self._client.images.generate(
            model=self.model,
            prompt=request.prompt,
            n=1,
            size=size,
            quality=self.quality,
            output_format=self.output_format,
        )

    async def _image_bytes(self, b64: str | None, url: str | None) -> bytes:
        if b64:
            try:
                return base64.b64decode(b64, validate=True)
            except (binascii.Error, ValueError):
                raise GenerationError(
                    "The image service sent an image we could not read.",
                    retryable=True,
                    kind=ErrorKind.SERVER,
                ) from None
        assert url is not None
        if not url.startswith(("http://", "https://")):
            raise GenerationError(
                "The image service sent a link we cannot download.",
                retryable=True,
                kind=ErrorKind.SERVER,
            )
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession()
        async with self._http.get(url) as resp:
            if resp.status != 200:
                raise GenerationError(
                    f"The generated image could not be downloaded (HTTP {resp.status}).",
                    retryable=True,
                    kind=ErrorKind.SERVER,
                )
            data = bytearray()
            async for chunk in resp.content.iter_chunked(1 << 16):
                data += chunk
                if len(data) > MAX_DOWNLOAD_BYTES:
                    raise GenerationError(
                        "The generated image was too large to download.", retryable=False, kind=ErrorKind.REJECTED
                    )
            return bytes(data)

    def _finish(self, data: bytes, request: ImageRequest, revised_prompt: str | None) -> GeneratedImage:
        extension, width, height = inspect(data)  # refuses a decompression bomb before any decoding
        if extension not in FORMATS.values():  # e.g. a compatible server answering GIF: store a PNG instead
            with Image.open(io.BytesIO(data)) as image:
                out = io.BytesIO()
                image.convert("RGBA").save(out, format="PNG")
            data, extension = out.getvalue(), "png"
        if extension == "png":
            text = dict(zip(STAMP_KEYS, (request.prompt, str(request.seed), self.name, request.author), strict=True))
            try:
                data = stamp_png(data, text)
            except ValueError:
                log.warning("could not add metadata to a PNG from the image service; stored as received")
        return GeneratedImage(data, extension, width, height, request.seed, self.name, self.model, revised_prompt)

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.close()
        if self._owns_client:
            await self._client.close()
