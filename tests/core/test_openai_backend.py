"""The OpenAI image backend, driven through the real `openai` SDK against a fake server on 127.0.0.1."""

from __future__ import annotations

import io
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import openai
import pytest
from PIL import Image

from core.app import make_backend
from core.config import ConfigError, Settings
from core.gen.backend import ErrorKind, GenerationError, ImageRequest
from core.gen.media import MediaStore
from core.gen.openai_backend import FLEXIBLE_SIZES, OpenAIBackend, classify, parse_retry_after, stamp_png
from core.gen.service import ImageService
from core.gen.sizes import ASPECT_RATIOS
from tests.fakes.openai_server import (
    FakeOpenAI,
    content_policy,
    error,
    fake_openai,  # noqa: F401  (the fixture)
    garbage_json,
    html_page,
    http_date,
    image_bomb,
    image_ok,
    image_url,
    insufficient_quota,
    make_image,
    rate_limited,
    server_error,
    slow,
)

KEY = "sk-test-not-a-real-key-0123456789"


def openai_settings(server: FakeOpenAI | None = None, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "_env_file": None,
        "image_backend": "openai",
        "openai_api_key": KEY,
        "openai_base_url": server.base_url if server else None,
        "generation_timeout_seconds": 5.0,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
async def backend(fake_openai: FakeOpenAI) -> AsyncIterator[OpenAIBackend]:  # noqa: F811
    made = OpenAIBackend(openai_settings(fake_openai, openai_image_quality="high"))
    yield made
    await made.aclose()


def request(width: int = 1536, height: int = 864, prompt: str = "a red fox in the snow") -> ImageRequest:
    return ImageRequest(prompt, 42, width, height, "alice")


def png_chunks(data: bytes, kind: bytes) -> list[bytes]:
    chunks, pos = [], 8
    while pos < len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        if data[pos + 4 : pos + 8] == kind:
            chunks.append(data[pos + 8 : pos + 8 + length])
        pos += 12 + length
    return chunks


async def failure(backend: OpenAIBackend, req: ImageRequest | None = None) -> GenerationError:
    with pytest.raises(GenerationError) as caught:
        await backend.generate(req or request())
    return caught.value


# --- success ------------------------------------------------------------------------------------------


async def test_b64_answer_becomes_a_stamped_png_with_the_revised_prompt(
    backend: OpenAIBackend,
    fake_openai: FakeOpenAI,  # noqa: F811
) -> None:
    fake_openai.script_images(image_ok(revised_prompt="A red fox curled up in fresh snow"))
    image = await backend.generate(request())

    assert (image.extension, image.width, image.height) == ("png", 1536, 864)
    assert (image.backend, image.model, image.seed) == ("openai", "gpt-image-2", 42)
    assert image.revised_prompt == "A red fox curled up in fresh snow"
    opened = Image.open(io.BytesIO(image.data))
    assert opened.size == (1536, 864)
    assert opened.text == {"prompt": "a red fox in the snow", "seed": "42", "backend": "openai", "author": "alice"}
    # The pixels are the server's, untouched: stamping adds chunks, it does not re-encode.
    assert png_chunks(image.data, b"IDAT") == png_chunks(make_image((1536, 864), "png"), b"IDAT")

    [sent] = fake_openai.image_requests
    assert sent == {
        "model": "gpt-image-2",
        "prompt": "a red fox in the snow",
        "n": 1,
        "size": "1536x864",
        "quality": "high",
        "output_format": "png",
    }
    assert fake_openai.requests[0].headers["Authorization"] == f"Bearer {KEY}"


async def test_a_prompt_outside_latin1_is_stamped_as_utf8(backend: OpenAIBackend) -> None:
    image = await backend.generate(request(prompt="лиса в снегу 🦊"))
    assert Image.open(io.BytesIO(image.data)).text["prompt"] == "лиса в снегу 🦊"


async def test_url_answer_is_downloaded_from_the_server(
    backend: OpenAIBackend,
    fake_openai: FakeOpenAI,  # noqa: F811
) -> None:
    fake_openai.script_images(image_url(revised_prompt="a fox"))
    image = await backend.generate(request())
    assert image.revised_prompt == "a fox"
    assert Image.open(io.BytesIO(image.data)).text["author"] == "alice"
    assert [r.path for r in fake_openai.requests] == ["/v1/images/generations", "/files/img-1.png"]


async def test_a_url_that_cannot_be_downloaded_is_a_retryable_failure(
    backend: OpenAIBackend,
    fake_openai: FakeOpenAI,  # noqa: F811
) -> None:
    fake_openai.script_images(image_url(missing=True))
    err = await failure(backend)
    assert (err.kind, err.retryable) == (ErrorKind.SERVER, True)
    assert "404" in str(err)


async def test_jpeg_output_is_stored_as_sent(fake_openai: FakeOpenAI) -> None:  # noqa: F811
    backend = OpenAIBackend(openai_settings(fake_openai, openai_output_format="jpeg"))
    try:
        fake_openai.script_images(image_ok(fmt="jpeg"))
        image = await backend.generate(request(1024, 1024))
    finally:
        await backend.aclose()
    assert image.extension == "jpeg"
    assert image.data == make_image((1024, 1024), "jpeg")  # not re-encoded
    assert fake_openai.image_requests[0]["output_format"] == "jpeg"


async def test_the_image_service_asks_for_the_aspects_size_and_leaves_storing_to_the_queue(
    backend: OpenAIBackend,
    tmp_path: Path,
    fake_openai: FakeOpenAI,  # noqa: F811
) -> None:
    """The queue signs the image for its post and stores it once (tests/core/test_generation_queue.py)."""
    generated, edited = await ImageService(backend, MediaStore(tmp_path)).create("a calm lake", 7, "9:16", "bob")
    assert generated.data.startswith(b"\x89PNG") and not edited
    assert fake_openai.image_requests[0]["size"] == "864x1536"
    assert not files_in(tmp_path)


def files_in(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


# --- error mapping --------------------------------------------------------------------------------------


async def test_rate_limit_is_retryable_after_the_retry_after_seconds(
    backend: OpenAIBackend,
    fake_openai: FakeOpenAI,  # noqa: F811
) -> None:
    fake_openai.script_images(rate_limited(retry_after="7"))
    err = await failure(backend)
    assert (err.kind, err.retryable, err.retry_after) == (ErrorKind.RATE_LIMITED, True, 7.0)
    assert len(fake_openai.image_requests) == 1  # the SDK did not retry on its own


async def test_rate_limit_retry_after_as_an_http_date(
    backend: OpenAIBackend,
    fake_openai: FakeOpenAI,  # noqa: F811
) -> None:
    fake_openai.script_images(rate_limited(retry_after=http_date(30)))
    err = await failure(backend)
    assert err.kind == ErrorKind.RATE_LIMITED
    assert err.retry_after is not None and 25 <= err.retry_after <= 30


async def test_rate_limit_without_retry_after(
    backend: OpenAIBackend,
    fake_openai: FakeOpenAI,  # noqa: F811
) -> None:
    fake_openai.script_images(rate_limited(retry_after=None))
    err = await failure(backend)
    assert (err.kind, err.retryable, err.retry_after) == (ErrorKind.RATE_LIMITED, True, None)


async def test_insufficient_quota_is_not_retried_and_says_so_plainly(
    backend: OpenAIBackend,
    fake_openai: FakeOpenAI,  # noqa: F811
) -> None:
    fake_openai.script_images(insufficient_quota())
    err = await failure(backend)
    assert (err.kind, err.retryable) == (ErrorKind.QUOTA_EXHAUSTED, False)
    assert "out of credit" in str(err)


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_errors_are_retryable(
    backend: OpenAIBackend,
    fake_openai: FakeOpenAI,  # noqa: F811
    status: int,
) -> None:
    fake_openai.script_images(server_error(status))
    err = await failure(backend)
    assert (err.kind, err.retryable) == (ErrorKind.SERVER, True)
    assert len(fake_openai.image_requests) == 1


@pytest.mark.parametrize("code", ["content_policy_violation", "moderation_blocked"])
async def test_content_policy_refusal_is_final_with_a_plain_message(
    backend: OpenAIBackend,
    fake_openai: FakeOpenAI,  # noqa: F811
    code: str,
) -> None:
    fake_openai.script_images(content_policy(code))
    err = await failure(backend)
    assert (err.kind, err.retryable) == (ErrorKind.CONTENT_POLICY, False)
    assert str(err) == "The image service refused this prompt under its content policy. Try describing it differently."


async def test_other_client_errors_are_final(
    backend: OpenAIBackend,
    fake_openai: FakeOpenAI,  # noqa: F811
) -> None:
    fake_openai.script_images(error(400, message="Invalid size '1536x864'.", code="invalid_value", param="size"))
    err = await failure(backend)
    assert (err.kind, err.retryable) == (ErrorKind.REJECTED, False)
    assert "HTTP 400" in str(err)


async def test_a_rejected_key_is_final_and_never_shown_or_logged(
    backend: OpenAIBackend,
    fake_openai: FakeOpenAI,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake_openai.script_images(
        error(401, message=f"Incorrect API key provided: {KEY}.", type="invalid_request_error", code="invalid_api_key")
    )
    with caplog.at_level(logging.DEBUG):
        err = await failure(backend)
    assert (err.kind, err.retryable) == (ErrorKind.AUTH, False)
    assert KEY not in str(err)
    assert KEY not in caplog.text
    assert err.__cause__ is None and err.__suppress_context__  # no SDK exception (and its request) rides along


async def test_an_unreachable_server_is_a_retryable_connection_error() -> None:
    server = await FakeOpenAI().start()
    base_url = server.base_url
    await server.stop()  # nothing listens on that port any more
    backend = OpenAIBackend(openai_settings(openai_base_url=base_url))
    try:
        err = await failure(backend)
    finally:
        await backend.aclose()
    assert (err.kind, err.retryable) == (ErrorKind.CONNECTION, True)


async def test_the_generation_timeout_really_stops_a_slow_answer(fake_openai: FakeOpenAI) -> None:  # noqa: F811
    backend = OpenAIBackend(openai_settings(fake_openai, generation_timeout_seconds=0.5))
    fake_openai.script_images(slow(5))
    started = time.monotonic()
    try:
        err = await failure(backend)
    finally:
        await backend.aclose()
    assert (err.kind, err.retryable) == (ErrorKind.TIMEOUT, True)
    assert 0.4 < time.monotonic() - started < 2


async def test_the_sdk_read_timeout_maps_to_timeout_too(fake_openai: FakeOpenAI) -> None:  # noqa: F811
    # Our own deadline is generous here, so it is the SDK's timeout (APITimeoutError) that fires.
    client = openai.AsyncOpenAI(api_key=KEY, base_url=fake_openai.base_url, timeout=0.3, max_retries=0)
    backend = OpenAIBackend(openai_settings(fake_openai, generation_timeout_seconds=10), client=client)
    fake_openai.script_images(slow(5))
    started = time.monotonic()
    try:
        err = await failure(backend)
    finally:
        await client.close()
        await backend.aclose()
    assert (err.kind, err.retryable) == (ErrorKind.TIMEOUT, True)
    assert time.monotonic() - started < 2


def no_tracebacks(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The log lines, after checking that none carries a traceback."""
    assert [r.exc_info for r in caplog.records if r.exc_info] == []
    return [r.getMessage() for r in caplog.records]


@pytest.mark.parametrize(
    "answer",
    [
        html_page(),
        html_page(status=502),
        garbage_json("{not json"),
        garbage_json('{"data": "no images today"}'),
        garbage_json('{"data": [1, 2]}'),
        garbage_json("[1, 2]"),
        garbage_json('{"data": [{"b64_json": 5}]}'),
    ],
    ids=["html", "html-502", "broken-json", "data-a-string", "data-of-numbers", "a-list", "b64-a-number"],
)
async def test_an_answer_that_is_not_openai_json_is_a_retryable_server_error_logged_in_one_line(
    backend: OpenAIBackend,
    fake_openai: FakeOpenAI,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
    answer: Any,
) -> None:
    fake_openai.script_images(answer)
    with caplog.at_level(logging.WARNING):
        err = await failure(backend)
    assert (err.kind, err.retryable) == (ErrorKind.SERVER, True)
    assert "try again" not in str(err)  # only the queue knows whether it will
    [line] = no_tracebacks(caplog)
    assert line.startswith("image generation failed: server")


async def test_a_decompression_bomb_is_refused_from_its_header_and_not_retried(
    backend: OpenAIBackend,
    fake_openai: FakeOpenAI,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake_openai.script_images(image_bomb((100_000, 100_000)))
    with caplog.at_level(logging.WARNING):
        err = await failure(backend)
    assert (err.kind, err.retryable) == (ErrorKind.REJECTED, False)
    assert "too large" in str(err)
    [line] = no_tracebacks(caplog)
    assert "decompression bomb" in line


def test_classify_keeps_generation_errors_and_maps_unknown_ones() -> None:
    own = GenerationError("x", retryable=False, kind="content_policy")
    assert classify(own) is own
    assert classify(RuntimeError("boom")).kind == ErrorKind.UNKNOWN
    assert "boom" not in str(classify(RuntimeError("boom")))


def test_parse_retry_after() -> None:
    assert parse_retry_after({"retry-after": "12"}) == 12.0
    assert parse_retry_after({"retry-after-ms": "1500", "retry-after": "12"}) == 1.5
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None
    assert parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0  # in the past


# --- sizes and configuration ------------------------------------------------------------------------------


def test_gpt_image_2_gets_exact_ratios_in_multiples_of_16() -> None:
    backend = OpenAIBackend(openai_settings())
    assert backend.sizes == FLEXIBLE_SIZES
    for aspect, (width, height) in backend.sizes.items():
        assert width % 16 == 0 and height % 16 == 0
        assert width / height == pytest.approx(ASPECT_RATIOS[aspect], abs=1e-9)
    assert backend.honours_seed is False


@pytest.mark.parametrize("model", ["gpt-image-1.5", "gpt-image-1-mini", "some-future-model"])
def test_other_models_get_the_nearest_standard_size(model: str) -> None:
    backend = OpenAIBackend(openai_settings(openai_image_model=model))
    assert backend.sizes == {
        "1:1": (1024, 1024),
        "16:9": (1536, 1024),
        "9:16": (1024, 1536),
        "3:2": (1536, 1024),
        "2:3": (1024, 1536),
    }


@pytest.mark.parametrize(
    ("model", "asked", "sent"),
    [
        ("gpt-image-2", (1000, 562), "1536x864"),  # not multiples of 16: the nearest ratio the model takes
        ("gpt-image-2", (1344, 768), "1344x768"),  # a valid custom size (the local backend's 16:9) goes as it is
        ("gpt-image-2", (512, 512), "1024x1024"),  # too few pixels
        ("gpt-image-2", (4096, 2304), "1536x864"),  # too many
        ("gpt-image-2", (4000, 1000), "1536x864"),  # 4:1 is outside 1:3..3:1
        ("gpt-image-1.5", (1536, 864), "1536x1024"),
    ],
)
async def test_the_size_sent_is_one_the_model_accepts(
    fake_openai: FakeOpenAI,  # noqa: F811
    model: str,
    asked: tuple[int, int],
    sent: str,
) -> None:
    backend = OpenAIBackend(openai_settings(fake_openai, openai_image_model=model, openai_image_quality="low"))
    try:
        await backend.generate(request(*asked))
    finally:
        await backend.aclose()
    assert fake_openai.image_requests[0]["size"] == sent
    assert fake_openai.image_requests[0]["quality"] == "low"
    assert fake_openai.image_requests[0]["model"] == model


def one_line_config_error(settings: Settings) -> str:
    with pytest.raises(ConfigError) as caught:
        OpenAIBackend(settings)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_a_retired_model_stops_start_up_in_one_line() -> None:
    message = one_line_config_error(openai_settings(openai_image_model="dall-e-3"))
    assert message.startswith("Invalid setting OPENAI_IMAGE_MODEL: dall-e-3 was retired")


def test_a_compatible_server_may_use_any_model_name(fake_openai: FakeOpenAI) -> None:  # noqa: F811
    backend = OpenAIBackend(openai_settings(fake_openai, openai_image_model="dall-e-3"))
    assert backend.sizes["1:1"] == (1024, 1024)


def test_a_missing_key_stops_start_up_in_one_line() -> None:
    message = one_line_config_error(openai_settings(openai_api_key=None))
    assert message == "Invalid setting OPENAI_API_KEY: it is required for the openai image backend"


def test_a_quality_the_model_does_not_take_stops_start_up() -> None:
    # Settings' own validation already limits the values; this guards values set in code or added later.
    settings = openai_settings().model_copy(update={"openai_image_quality": "ultra"})
    message = one_line_config_error(settings)
    assert message == "Invalid setting OPENAI_IMAGE_QUALITY: gpt-image-2 accepts auto, high, low, medium, not 'ultra'"


def test_an_output_format_the_model_does_not_take_stops_start_up() -> None:
    settings = openai_settings().model_copy(update={"openai_output_format": "gif"})
    assert one_line_config_error(settings).startswith("Invalid setting OPENAI_OUTPUT_FORMAT:")


async def test_make_backend_picks_openai_when_configured() -> None:
    backend = make_backend(openai_settings())
    try:
        assert isinstance(backend, OpenAIBackend)
        assert backend.model == "gpt-image-2"
    finally:
        await backend.aclose()


def test_stamp_png_replaces_text_the_server_wrote_and_rejects_non_png() -> None:
    stamped = stamp_png(make_image((16, 16), "png"), {"author": "alice", "seed": "1"})
    assert Image.open(io.BytesIO(stamped)).text == {"author": "alice", "seed": "1"}
    with pytest.raises(ValueError):
        stamp_png(make_image((16, 16), "jpeg"), {"author": "alice"})
