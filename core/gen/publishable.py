"""Making every generated image publishable on every platform before it becomes a post.

An image server may send anything: a 50 MB PNG, a 12000x12000 picture, or a "decompression bomb" whose
header claims billions of pixels. The header is read first (no pixels decoded) and an image over
MAX_SOURCE_PIXELS fails the job. An image within every platform's photo limits is kept byte for byte;
any other is downscaled and recompressed until it fits the strictest of them, so a post can always be
delivered. The platforms' limits live here, once, rather than in each adapter.
"""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace

from PIL import Image, UnidentifiedImageError
from PIL.PngImagePlugin import PngInfo

from core.gen.backend import ErrorKind, GeneratedImage, GenerationError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PhotoLimits:
    """What a platform accepts as a photo."""

    max_bytes: int
    max_side_sum: int  # width + height
    max_ratio: float  # longer side / shorter side

    def fits(self, size: int, width: int, height: int) -> bool:
        return size <= self.max_bytes and width + height <= self.max_side_sum and ratio(width, height) <= self.max_ratio


def ratio(width: int, height: int) -> float:
    return max(width, height) / max(min(width, height), 1)


def strictest(*limits: PhotoLimits) -> PhotoLimits:
    return PhotoLimits(
        max_bytes=min(limit.max_bytes for limit in limits),
        max_side_sum=min(limit.max_side_sum for limit in limits),
        max_ratio=min(limit.max_ratio for limit in limits),
    )


# Bot API sendPhoto: "at most 10 MB in size", "width and height must not exceed 10000 in total",
# "ratio must be at most 20".
TELEGRAM_PHOTO = PhotoLimits(max_bytes=10_000_000, max_side_sum=10_000, max_ratio=20.0)
# Discord: uploads up to 10 MiB without Nitro boosts; no dimension limit for attachments.
DISCORD_UPLOAD = PhotoLimits(max_bytes=10 * 1024 * 1024, max_side_sum=1_000_000, max_ratio=1_000.0)
PUBLISHABLE = strictest(TELEGRAM_PHOTO, DISCORD_UPLOAD)

# 12000x12000 (144 M pixels) still decodes (~430 MB for a moment); a header claiming more is taken for a
# decompression bomb. Pillow's own check (a warning above MAX_IMAGE_PIXELS, an error above twice that) is
# raised to ours, so a picture we accept does not warn and one far beyond it stops in Image.open.
MAX_SOURCE_PIXELS = 150_000_000
Image.MAX_IMAGE_PIXELS = max(Image.MAX_IMAGE_PIXELS or 0, MAX_SOURCE_PIXELS)
FORMATS = {"PNG": "png", "JPEG": "jpeg", "WEBP": "webp"}  # what every platform shows as a photo
JPEG_QUALITIES = (90, 80, 70)
SHRINK_STEP = 0.75
# Decoding a big image takes hundreds of MB; one at a time keeps concurrent jobs from adding that up.
_decoding = threading.Lock()

TOO_BIG = "The image service sent an image far too large to handle. Try again with another prompt."
UNREADABLE = "The image service sent something that is not an image."
TOO_NARROW = "The image service sent an image too long and narrow to post ({width}x{height})."


def inspect(data: bytes) -> tuple[str, int, int]:
    """The image's format ("png", or Pillow's name in lower case) and size, from its header only.
    Raises GenerationError: non-retryable for a decompression bomb, retryable for bytes that are not
    an image (the server may do better next time)."""
    try:
        with Image.open(io.BytesIO(data)) as opened:  # reads the header only
            fmt, (width, height) = opened.format or "", opened.size
    except Image.DecompressionBombError as exc:
        log.warning("refused an image taken for a decompression bomb: %s", exc)
        raise GenerationError(TOO_BIG, retryable=False, kind=ErrorKind.REJECTED) from None
    except (UnidentifiedImageError, OSError, ValueError):
        log.warning("the image service sent %d bytes that are not an image", len(data))
        raise GenerationError(UNREADABLE, retryable=True, kind=ErrorKind.SERVER) from None
    if width * height > MAX_SOURCE_PIXELS:
        log.warning("refused an image claiming %dx%d pixels (a decompression bomb?)", width, height)
        raise GenerationError(TOO_BIG, retryable=False, kind=ErrorKind.REJECTED)
    return FORMATS.get(fmt, fmt.lower()), width, height


def publishable(image: GeneratedImage, limits: PhotoLimits = PUBLISHABLE) -> GeneratedImage:
    """The image as it can be posted everywhere (blocking: call from a thread); the same bytes when they
    already fit. Raises GenerationError as `inspect` does, and non-retryable for a shape no platform takes."""
    extension, width, height = inspect(image.data)
    if ratio(width, height) > limits.max_ratio:
        log.warning("refused a %dx%d image from %s: no platform takes that ratio", width, height, image.backend)
        raise GenerationError(TOO_NARROW.format(width=width, height=height), retryable=False, kind=ErrorKind.REJECTED)
    if extension in FORMATS.values() and limits.fits(len(image.data), width, height):
        return replace(image, extension=extension, width=width, height=height)
    with _decoding:
        data, new_extension, size = _shrink(image.data, extension, limits)
    log.info(
        "made a %dx%d %s image of %d bytes publishable: %dx%d %s of %d bytes",
        width,
        height,
        extension,
        len(image.data),
        *size,
        new_extension,
        len(data),
    )
    return replace(image, data=data, extension=new_extension, width=size[0], height=size[1])


def _shrink(data: bytes, extension: str, limits: PhotoLimits) -> tuple[bytes, str, tuple[int, int]]:
    try:
        with Image.open(io.BytesIO(data)) as opened:
            opened.load()
            return _fit(opened, dict(getattr(opened, "text", {})), extension, len(data), limits)
    except (OSError, ValueError, Image.DecompressionBombError):
        log.warning("an image from the image service could not be decoded")
        raise GenerationError(UNREADABLE, retryable=True, kind=ErrorKind.SERVER) from None


def _fit(
    picture: Image.Image, text: dict[str, str], extension: str, size_in: int, limits: PhotoLimits
) -> tuple[bytes, str, tuple[int, int]]:
    """Downscale to the side limit, then recompress (and shrink further) until the bytes fit."""
    if picture.mode not in ("1", "L", "LA", "P", "RGB", "RGBA"):  # CMYK, 16-bit...: what PNG and JPEG take
        picture = picture.convert("RGBA" if "A" in picture.mode else "RGB")
    scale = min(1.0, (limits.max_side_sum - 1) / (picture.width + picture.height))
    while True:
        size = (max(1, int(picture.width * scale)), max(1, int(picture.height * scale)))
        # reducing_gap: a fast box reduction to about the size first; LANCZOS over 144 M pixels takes seconds.
        resized = picture if size == picture.size else picture.resize(size, Image.Resampling.LANCZOS, reducing_gap=1.0)
        # Fewer pixels shrink a PNG about in proportion; when even that cannot fit, skip the slow PNG attempt.
        lossless = extension not in ("jpeg", "webp") and size_in * scale * scale <= limits.max_bytes
        for encoded, new_extension in _encodings(resized, lossless, text):
            if len(encoded) <= limits.max_bytes:
                return encoded, new_extension, size
        scale *= SHRINK_STEP


def _encodings(picture: Image.Image, lossless: bool, text: dict[str, str]) -> Iterator[tuple[bytes, str]]:
    """Candidates from best to smallest: PNG (keeping its text chunks) when worth a try, then JPEG."""
    if lossless:
        info = PngInfo()
        for key, value in text.items():
            info.add_text(key, value)
        yield _save(picture, "PNG", pnginfo=info), "png"
    rgb = _flatten(picture)
    for quality in JPEG_QUALITIES:
        yield _save(rgb, "JPEG", quality=quality, optimize=True), "jpeg"


def _flatten(picture: Image.Image) -> Image.Image:
    """JPEG has no transparency: put transparent parts on white."""
    if picture.mode in ("RGBA", "LA", "PA") or (picture.mode == "P" and "transparency" in picture.info):
        rgba = picture.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return picture.convert("RGB")


def _save(picture: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    picture.save(out, format=fmt, **options)
    return out.getvalue()
