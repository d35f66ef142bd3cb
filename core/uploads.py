"""A person's own picture, checked before anything else is done with it: its size, that it really is
an image (decoded by Pillow, whatever its name or type claims), its pixel count (a decompression bomb
is refused from its header, core.gen.publishable), and moderation. What is kept is the pixels alone,
re-encoded: EXIF, GPS and every other metadata block is gone."""

from __future__ import annotations

import asyncio
import io
import logging
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from core.errors import UserError
from core.gen.backend import GenerationError
from core.gen.moderation import Moderator
from core.gen.publishable import _decoding, inspect
from core.params import Upload

log = logging.getLogger(__name__)

NOT_AN_IMAGE = "That file is not a picture I can read. Send a photo (PNG, JPEG or WebP)."
TOO_MANY_PIXELS = "That picture has far too many pixels to handle. Send a smaller one."


@dataclass(frozen=True, slots=True)
class CleanImage:
    data: bytes
    extension: str  # "png" or "jpeg"
    width: int
    height: int


def _too_big(size: int, limit_mb: float) -> UserError:
    return UserError(f"That picture is {size / 1_000_000:.1f} MB; the limit is {limit_mb:g} MB.")


def clean(data: bytes) -> CleanImage:
    """The picture's pixels in a fresh file (blocking: call from a thread). Raises UserError."""
    try:
        inspect(data)  # header only: a bomb stops here, before any pixel is decoded
    except GenerationError as exc:
        raise UserError(TOO_MANY_PIXELS if not exc.retryable else NOT_AN_IMAGE) from None
    try:
        with _decoding, Image.open(io.BytesIO(data)) as opened:
            opened.load()
            upright = ImageOps.exif_transpose(opened)  # a phone's rotation flag is applied, then dropped
            mode = "RGBA" if "A" in upright.getbands() or "transparency" in upright.info else "RGB"
            pixels = upright.convert(mode)
            # A new image from the raw pixels carries no info dict: no EXIF, GPS, XMP, ICC or text.
            fresh = Image.frombytes(mode, pixels.size, pixels.tobytes())
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError, SyntaxError):
        raise UserError(NOT_AN_IMAGE) from None
    out = io.BytesIO()
    if mode == "RGBA":
        fresh.save(out, format="PNG", compress_level=6)
        extension = "png"
    else:
        fresh.save(out, format="JPEG", quality=92)
        extension = "jpeg"
    return CleanImage(out.getvalue(), extension, fresh.width, fresh.height)


async def check(upload: Upload, *, limit_mb: float, moderator: Moderator) -> CleanImage:
    """The upload as it may be used, or a UserError of one line; nothing is stored here."""
    if upload.total_size > limit_mb * 1_000_000:
        raise _too_big(upload.total_size, limit_mb)
    picture = await asyncio.to_thread(clean, upload.data)
    verdict = await moderator.check_image(picture.data, f"image/{picture.extension}")
    if not verdict.allowed:
        raise UserError(verdict.reason)
    return picture
