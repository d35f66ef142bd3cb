"""The offline generator: deterministic, prompt-sensitive, colour-aware, honest PNG metadata and sizes."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageChops, ImageStat

from core.gen.backend import ImageRequest
from core.gen.local import LocalBackend
from core.gen.sizes import nearest_size

SMALL = 256  # big enough to judge colours and shapes, small enough to stay fast


def make(prompt: str, seed: int = 1, width: int = SMALL, height: int = SMALL, author: str = "") -> Image.Image:
    data = LocalBackend().generate_sync(ImageRequest(prompt, seed, width, height, author)).data
    return Image.open(io.BytesIO(data))


def mean_difference(a: Image.Image, b: Image.Image) -> float:
    return sum(ImageStat.Stat(ImageChops.difference(a.convert("RGB"), b.convert("RGB"))).mean) / 3


def channel_means(image: Image.Image) -> tuple[float, float, float]:
    r, g, b = ImageStat.Stat(image.convert("RGB")).mean
    return r, g, b


def test_same_prompt_and_seed_give_identical_bytes() -> None:
    backend = LocalBackend()
    request = ImageRequest("a red fox in the snow", 42, SMALL, SMALL, "alice")
    assert backend.generate_sync(request).data == backend.generate_sync(request).data


def test_another_seed_gives_another_image() -> None:
    assert mean_difference(make("a quiet harbour", 1), make("a quiet harbour", 2)) > 5


@pytest.mark.parametrize(
    ("first", "second"),
    [("a cat", "a dog"), ("city at night", "a quiet forest"), ("hello", "world"), ("a red fox", "a red car")],
)
def test_different_prompts_look_visibly_different(first: str, second: str) -> None:
    for seed in (1, 7):
        assert mean_difference(make(first, seed), make(second, seed)) > 15, (first, second, seed)


@pytest.mark.parametrize("subject", ["square", "car", "abstract shapes", "house"])
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_colour_words_set_the_palette(subject: str, seed: int) -> None:
    red_r, _, red_b = channel_means(make(f"a red {subject}", seed))
    blue_r, _, blue_b = channel_means(make(f"a blue {subject}", seed))
    assert red_r > blue_r + 20 and blue_b > red_b + 20, (red_r, red_b, blue_r, blue_b)
    assert red_r > red_b and blue_b > blue_r


def test_mood_words_change_brightness() -> None:
    dark = sum(channel_means(make("a dark garden", 3)))
    bright = sum(channel_means(make("a bright garden", 3)))
    assert bright > dark + 60


def test_png_text_chunks_record_prompt_seed_backend_and_author() -> None:
    image = make("a violet moon over water", seed=1234, author="alice")
    assert image.format == "PNG"
    assert image.text == {  # type: ignore[attr-defined]
        "prompt": "a violet moon over water",
        "seed": "1234",
        "backend": "local",
        "author": "alice",
    }


@pytest.mark.parametrize(("width", "height"), [(256, 256), (320, 180), (180, 320), (64, 48)])
def test_requested_sizes_are_honoured(width: int, height: int) -> None:
    generated = LocalBackend().generate_sync(ImageRequest("stars over a city", 5, width, height))
    assert (generated.width, generated.height) == (width, height)
    assert Image.open(io.BytesIO(generated.data)).size == (width, height)
    assert generated.extension == "png" and generated.seed == 5 and generated.backend == "local"


def test_every_advertised_size_matches_its_aspect_ratio() -> None:
    backend = LocalBackend()
    for aspect, (width, height) in backend.sizes.items():
        w, h = (int(x) for x in aspect.split(":"))
        assert abs(width / height - w / h) < 0.1, aspect
        assert nearest_size(aspect, backend.sizes) == (width, height)


async def test_async_generate_matches_the_sync_one() -> None:
    backend = LocalBackend()
    request = ImageRequest("waves at sunset", 9, 128, 96)
    assert (await backend.generate(request)).data == backend.generate_sync(request).data
    await backend.aclose()
