"""Every generated image is made publishable: within every platform's photo limits, or refused."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from core.gen.backend import ErrorKind, GeneratedImage, GenerationError
from core.gen.publishable import PUBLISHABLE, TELEGRAM_PHOTO, publishable
from tests.fakes.openai_server import make_bomb, make_image


def generated(data: bytes, extension: str = "png") -> GeneratedImage:
    return GeneratedImage(data, extension, 1024, 1024, 1, "openai", "gpt-image-2")


def test_the_strictest_limits_are_telegrams_photo_limits() -> None:
    assert (PUBLISHABLE.max_bytes, PUBLISHABLE.max_side_sum, PUBLISHABLE.max_ratio) == (10_000_000, 10_000, 20.0)
    assert PUBLISHABLE == TELEGRAM_PHOTO


def test_an_image_within_the_limits_is_kept_byte_for_byte() -> None:
    data = make_image((1536, 864), "png")
    image = publishable(generated(data))
    assert (image.data, image.extension, image.width, image.height) == (data, "png", 1536, 864)


def test_a_12000_pixel_square_is_downscaled_below_the_side_limit() -> None:
    image = publishable(generated(make_image((12000, 12000), "png", mode="L")))
    assert image.width == image.height and image.width + image.height <= 10_000
    with Image.open(io.BytesIO(image.data)) as opened:
        assert opened.size == (image.width, image.height)


def test_a_file_too_heavy_is_recompressed_below_10_mb_keeping_its_size_if_it_can() -> None:
    data = make_image((1900, 1900), "png", noise=True)
    assert len(data) > 10_000_000
    image = publishable(generated(data))
    assert image.extension == "jpeg" and len(image.data) <= 10_000_000
    assert (image.width, image.height) == (1900, 1900)


def test_a_png_shrunk_in_size_keeps_its_text_chunks() -> None:
    image = publishable(generated(make_image((9600, 500), "png")))
    assert image.extension == "png" and image.width + image.height <= 10_000
    assert Image.open(io.BytesIO(image.data)).text == {"author": "server"}


def test_a_gif_is_stored_as_a_png() -> None:
    image = publishable(generated(make_image((64, 64), "gif"), "gif"))
    assert image.extension == "png" and Image.open(io.BytesIO(image.data)).format == "PNG"


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # Pillow's, before ours refuses
@pytest.mark.parametrize("size", [(100_000, 100_000), (13_000, 13_000)])
def test_a_decompression_bomb_is_refused_for_good(size: tuple[int, int]) -> None:
    with pytest.raises(GenerationError) as caught:
        publishable(generated(make_bomb(size)))
    assert (caught.value.kind, caught.value.retryable) == (ErrorKind.REJECTED, False)


def test_a_shape_no_platform_takes_is_refused_for_good() -> None:
    with pytest.raises(GenerationError) as caught:
        publishable(generated(make_image((4200, 200), "png")))
    assert caught.value.retryable is False and "narrow" in str(caught.value)


def test_bytes_that_are_no_image_are_a_retryable_server_error() -> None:
    with pytest.raises(GenerationError) as caught:
        publishable(generated(b"<html>oops</html>"))
    assert (caught.value.kind, caught.value.retryable) == (ErrorKind.SERVER, True)
