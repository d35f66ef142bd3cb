"""A fake OpenAI images + moderations server: real HTTP on 127.0.0.1, for the real `openai` SDK.

Start it, point the SDK (or Settings.openai_base_url) at `server.base_url`, script the answers, then
look at what it received:

    async with FakeOpenAI() as server:
        server.script_images(rate_limited(retry_after="3"), image_ok(revised_prompt="a red fox"))
        settings = Settings(_env_file=None, openai_api_key="sk-test", openai_base_url=server.base_url, ...)
        ...
        assert server.image_requests[0]["size"] == "1536x864"

or, in a test module, with the ready-made fixture (import it, or import it into a conftest):

    from tests.fakes.openai_server import fake_openai  # noqa: F401

    async def test_something(fake_openai: FakeOpenAI) -> None: ...

Endpoints
- POST /v1/images/generations: answers with the next scripted answer (`script_images`), or with
  `server.default_image` (normally `image_ok()`) once the script is used up.
- POST /v1/images/edits: a multipart upload (the SDK's `images.edit`); answered from the same script
  as generations. Its form fields are recorded like a JSON body, and the uploaded picture's bytes
  in `server.edit_images`.
- POST /v1/moderations: the next answer from `script_moderation`, else `server.default_moderation`
  (normally `not_flagged()`).
- GET /files/<name>: the images handed out by `image_url()` answers.

Answers (module functions, each returns a `FakeAnswer`)
- `image_ok(revised_prompt=None, size=None, fmt="png")`: 200 with a real image made by Pillow in `b64_json`
  (`size=None` means the requested size; `fmt` is "png", "jpeg" or "webp"). The PNG carries a text
  chunk `author=server` so tests can check it is replaced.
- `image_url(...)`: the same image, served from this server and answered as `url` (what some
  OpenAI-compatible servers do); `missing=True` hands out a link that answers 404.
- `rate_limited(retry_after="2")`: 429 `rate_limit_exceeded`, with a Retry-After header (seconds or an
  HTTP date; None for no header).
- `insufficient_quota()`: 429 with code `insufficient_quota` (the account is out of credit).
- `server_error(status=500)`: a 5xx with OpenAI's server_error body.
- `content_policy(code="content_policy_violation")`: 400 as OpenAI sends it for a refused prompt
  (`moderation_blocked` is what GPT image models use).
- `error(status, code=..., message=..., type=..., headers=...)`: any other error in OpenAI's shape.
- `image_ok(size=(4200, 4200), noise=True)`: random pixels that no compression shrinks (a huge file);
  `mode="L"` makes a cheap grey picture of an oversized size.
- `image_bomb(size=(100000, 100000))`: a decompression bomb, a PNG whose header claims that size.
- `html_page(status=200)`: an HTML error page (what a proxy answers when the server behind it is down).
- `garbage_json(raw='{"data": "no images today"}')`: a 200 "JSON" answer that is broken or of the wrong shape.
- `slow(delay, then=image_ok())`: wait `delay` seconds, then answer `then` (to exceed a client timeout).
  Stopping the server cuts the wait short, so a timed-out test never waits for it.
- `flagged(*categories)` / `not_flagged()`: moderation results.

Every error body has OpenAI's exact shape: {"error": {"message", "type", "param", "code"}}.

What it received
- `server.requests`: every request as `Received(method, path, headers, json)`, in order.
- `server.image_requests` / `server.moderation_requests`: the JSON bodies sent to each endpoint.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import itertools
import json
import random
import struct
import zlib
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
from aiohttp import web
from PIL import Image
from PIL.PngImagePlugin import PngInfo

IMAGES_PATH = "/v1/images/generations"
EDITS_PATH = "/v1/images/edits"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MODERATIONS_PATH = "/v1/moderations"
MODERATION_CATEGORIES = (
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/instructions",
    "self-harm/intent",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
)


@dataclass(frozen=True)
class FakeAnswer:
    status: int = 200
    body: dict[str, Any] | None = None  # for errors and moderation answers
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    then: FakeAnswer | None = None  # for `slow`
    # For image answers:
    image: bool = False
    as_url: bool = False
    missing: bool = False
    fmt: str = "png"
    size: tuple[int, int] | None = None
    revised_prompt: str | None = None
    noise: bool = False  # random pixels, which no compression shrinks: a big file
    mode: str = "RGB"
    bomb: bool = False  # only a header claiming `size`: a decompression bomb
    # For answers that are not OpenAI's JSON (an HTML error page, broken JSON): the raw body as sent.
    raw: str | None = None
    content_type: str = "application/json"


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    json: Any


def error_body(message: str, type_: str, code: str | None, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def image_ok(
    *,
    revised_prompt: str | None = None,
    size: tuple[int, int] | None = None,
    fmt: str = "png",
    noise: bool = False,
    mode: str = "RGB",
) -> FakeAnswer:
    return FakeAnswer(image=True, fmt=fmt, size=size, revised_prompt=revised_prompt, noise=noise, mode=mode)


def image_bomb(size: tuple[int, int] = (100_000, 100_000)) -> FakeAnswer:
    return FakeAnswer(image=True, size=size, bomb=True)


def html_page(status: int = 200) -> FakeAnswer:
    """What a proxy in front of the server sends when the server is down, or a captive portal always."""
    page = "<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\n<body>Bad Gateway</body></html>"
    return FakeAnswer(status=status, raw=page, content_type="text/html")


def garbage_json(raw: str = '{"data": "no images today"}') -> FakeAnswer:
    """A 200 announced as JSON whose body is broken JSON or JSON of the wrong shape."""
    return FakeAnswer(raw=raw)


def image_url(
    *, revised_prompt: str | None = None, size: tuple[int, int] | None = None, fmt: str = "png", missing: bool = False
) -> FakeAnswer:
    return FakeAnswer(image=True, as_url=True, missing=missing, fmt=fmt, size=size, revised_prompt=revised_prompt)


def error(
    status: int,
    *,
    message: str = "Something went wrong.",
    type: str = "invalid_request_error",
    code: str | None = None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> FakeAnswer:
    return FakeAnswer(status=status, body=error_body(message, type, code, param), headers=dict(headers or {}))


def rate_limited(retry_after: str | None = "2") -> FakeAnswer:
    return error(
        429,
        message="Rate limit reached for images per minute. Please try again in 2s.",
        type="requests",
        code="rate_limit_exceeded",
        headers={"Retry-After": retry_after} if retry_after is not None else {},
    )


def insufficient_quota() -> FakeAnswer:
    return error(
        429,
        message="You exceeded your current quota, please check your plan and billing details.",
        type="insufficient_quota",
        code="insufficient_quota",
    )


def server_error(status: int = 500) -> FakeAnswer:
    return error(
        status,
        message="The server had an error while processing your request. Sorry about that!",
        type="server_error",
    )


def content_policy(code: str = "content_policy_violation") -> FakeAnswer:
    return error(
        400,
        message="Your request was rejected as a result of our safety system. "
        "Your prompt may contain text that is not allowed by our safety system.",
        type="image_generation_user_error",
        code=code,
    )


def slow(delay: float, then: FakeAnswer | None = None) -> FakeAnswer:
    return FakeAnswer(delay=delay, then=then or image_ok())


def http_date(seconds_from_now: float) -> str:
    """A Retry-After value as an HTTP date."""
    return format_datetime(datetime.now(UTC) + timedelta(seconds=seconds_from_now), usegmt=True)


def flagged(*categories: str) -> FakeAnswer:
    chosen = set(categories or ("violence",))
    return FakeAnswer(body=_moderation_body(True, chosen))


def not_flagged() -> FakeAnswer:
    return FakeAnswer(body=_moderation_body(False, set()))


def _moderation_body(is_flagged: bool, categories: set[str]) -> dict[str, Any]:
    return {
        "id": "modr-fake",
        "model": "omni-moderation-latest",
        "results": [
            {
                "flagged": is_flagged,
                "categories": {name: name in categories for name in MODERATION_CATEGORIES},
                "category_scores": {name: 0.9 if name in categories else 0.001 for name in MODERATION_CATEGORIES},
                "category_applied_input_types": {
                    name: ["text"] if name in categories else [] for name in MODERATION_CATEGORIES
                },
            }
        ],
    }


def make_image(size: tuple[int, int], fmt: str, *, noise: bool = False, mode: str = "RGB") -> bytes:
    if noise:
        image = Image.frombytes(mode, size, random.randbytes(size[0] * size[1] * len(mode)))
    else:
        image = Image.new(mode, size, (200, 90, 40)[: len(mode)] if len(mode) > 1 else 128)
    out = io.BytesIO()
    if fmt == "png":
        info = PngInfo()
        info.add_text("author", "server")  # the backend must replace this with the real author
        image.save(out, format="PNG", pnginfo=info, compress_level=1)
    else:
        image.save(out, format=fmt.upper())
    return out.getvalue()


def make_bomb(size: tuple[int, int]) -> bytes:
    """A PNG whose header claims `size` (1-bit grey), with one compressed row of pixels: decoding it in
    full would take width x height bytes of memory, so the header alone must stop it."""
    width, height = size
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    row = zlib.compress(b"\0" * (1 + (width + 7) // 8))
    return PNG_SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", row) + _chunk(b"IEND", b"")


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _parse_size(value: object) -> tuple[int, int]:
    try:
        width, height = str(value).lower().split("x")
        return int(width), int(height)
    except ValueError:
        return 1024, 1024  # "auto" or nonsense


class FakeOpenAI:
    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.default_image: FakeAnswer = image_ok()
        self.default_moderation: FakeAnswer = not_flagged()
        self.edit_images: list[bytes] = []
        self._images: deque[FakeAnswer] = deque()
        self._moderations: deque[FakeAnswer] = deque()
        self._files: dict[str, tuple[bytes, str]] = {}
        self._ids = itertools.count(1)
        self._stopping = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.origin = ""

    # --- scripting and inspection ---

    def script_images(self, *answers: FakeAnswer) -> None:
        self._images.extend(answers)

    def script_moderation(self, *answers: FakeAnswer) -> None:
        self._moderations.extend(answers)

    @property
    def base_url(self) -> str:
        return f"{self.origin}/v1"

    @property
    def image_requests(self) -> list[Any]:
        return [r.json for r in self.requests if r.path == IMAGES_PATH]

    @property
    def edit_requests(self) -> list[Any]:
        return [r.json for r in self.requests if r.path == EDITS_PATH]

    @property
    def moderation_requests(self) -> list[Any]:
        return [r.json for r in self.requests if r.path == MODERATIONS_PATH]

    # --- lifecycle ---

    async def start(self) -> FakeOpenAI:
        app = web.Application()
        app.router.add_post(IMAGES_PATH, self._images_handler)
        app.router.add_post(EDITS_PATH, self._edits_handler)
        app.router.add_post(MODERATIONS_PATH, self._moderations_handler)
        app.router.add_get("/files/{name}", self._file_handler)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.origin = f"http://{host}:{port}"
        return self

    async def stop(self) -> None:
        self._stopping.set()  # ends any `slow` waits at once
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeOpenAI:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- handlers ---

    async def _record(self, request: web.Request) -> Any:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        self.requests.append(Received(request.method, request.path, dict(request.headers), body))
        return body

    async def _wait(self, answer: FakeAnswer) -> FakeAnswer:
        while answer.delay:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), answer.delay)
            answer = answer.then or image_ok()
        return answer

    async def _images_handler(self, request: web.Request) -> web.Response:
        return await self._image_answer(await self._record(request))

    async def _edits_handler(self, request: web.Request) -> web.Response:
        form = await request.post()
        fields: dict[str, Any] = {}
        for name, value in form.items():
            if isinstance(value, web.FileField):
                self.edit_images.append(value.file.read())
                fields[name] = {"filename": value.filename, "content_type": value.content_type}
            else:
                fields[name] = value
        self.requests.append(Received(request.method, request.path, dict(request.headers), fields))
        return await self._image_answer(fields)

    async def _image_answer(self, body: Any) -> web.Response:
        answer = await self._wait(self._images.popleft() if self._images else self.default_image)
        if answer.raw is not None:
            return web.Response(text=answer.raw, status=answer.status, content_type=answer.content_type)
        if not answer.image:
            return web.json_response(answer.body, status=answer.status, headers=answer.headers)
        size = answer.size or _parse_size((body or {}).get("size"))
        data = make_bomb(size) if answer.bomb else make_image(size, answer.fmt, noise=answer.noise, mode=answer.mode)
        item: dict[str, Any] = {}
        if answer.as_url:
            name = f"img-{next(self._ids)}.{answer.fmt}"
            if not answer.missing:
                self._files[name] = (data, f"image/{answer.fmt}")
            item["url"] = f"{self.origin}/files/{name}"
        else:
            item["b64_json"] = base64.b64encode(data).decode()
        if answer.revised_prompt is not None:
            item["revised_prompt"] = answer.revised_prompt
        return web.json_response(
            {
                "created": 1_790_000_000,
                "data": [item],
                "output_format": answer.fmt,
                "size": f"{size[0]}x{size[1]}",
                "quality": (body or {}).get("quality") if (body or {}).get("quality") != "auto" else "medium",
            },
            headers=answer.headers,
        )

    async def _moderations_handler(self, request: web.Request) -> web.Response:
        await self._record(request)
        answer = await self._wait(self._moderations.popleft() if self._moderations else self.default_moderation)
        return web.json_response(answer.body, status=answer.status, headers=answer.headers)

    async def _file_handler(self, request: web.Request) -> web.Response:
        await self._record(request)
        found = self._files.get(request.match_info["name"])
        if found is None:
            return web.json_response(error_body("No such file.", "invalid_request_error", None), status=404)
        data, content_type = found
        return web.Response(body=data, content_type=content_type)


@pytest.fixture
async def fake_openai() -> AsyncIterator[FakeOpenAI]:
    """A started FakeOpenAI, stopped after the test."""
    async with FakeOpenAI() as server:
        yield server
