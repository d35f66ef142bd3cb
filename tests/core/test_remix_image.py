"""Remixes and variations start from the parent's picture: through OpenAI's edits endpoint (the real SDK
against the fake server), or the offline backend's visible transformation; a backend that cannot edit
falls back to the prompt and says so."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from PIL import Image
from pydantic import SecretStr

from core.app import Core, bootstrap
from core.config import Settings
from core.gen.backend import ImageRequest
from core.gen.local import LocalBackend
from core.models import Post
from tests.conftest import empty_tables
from tests.fakes.openai_server import FakeOpenAI
from tests.support import Chat


def similarity(a: bytes, b: bytes) -> float:
    """Pearson correlation of two pictures' 32x32 grey thumbnails: 1 for the same composition."""

    def pixels(data: bytes) -> list[float]:
        with Image.open(io.BytesIO(data)) as opened:
            return [float(v) for v in opened.convert("L").resize((32, 32)).get_flattened_data()]

    x, y = pixels(a), pixels(b)
    mx, my = sum(x) / len(x), sum(y) / len(y)
    cov = sum((p - mx) * (q - my) for p, q in zip(x, y, strict=True))
    vx, vy = sum((p - mx) ** 2 for p in x), sum((q - my) ** 2 for q in y)
    return cov / ((vx * vy) ** 0.5 or 1.0)


async def _post(core: Core, post_id: int) -> Post:
    async with core.sessions() as session:
        post = await session.get(Post, post_id)
    assert post is not None
    return post


def _bytes(core: Core, post: Post) -> bytes:
    return core.media.path(post.image_path).read_bytes()


@pytest.fixture
async def openai_core(settings: Settings, database_url: str, fake_openai: FakeOpenAI) -> AsyncIterator[Core]:
    core = await _openai_core(settings, fake_openai, "gpt-image-2")
    yield core
    await core.aclose()
    await empty_tables(database_url)


async def _openai_core(settings: Settings, fake_openai: FakeOpenAI, model: str) -> Core:
    configured = settings.model_copy(
        update={
            "image_backend": "openai",
            "openai_api_key": SecretStr("sk-test-not-a-real-key"),
            "openai_base_url": fake_openai.base_url,
            "openai_image_model": model,
            "openai_moderation": False,
        }
    )
    core = await bootstrap(configured)
    core.queue.config = replace(core.queue.config, poll_seconds=0.02)
    await core.start()
    return core


async def test_an_openai_remix_sends_the_parents_picture_to_the_edits_endpoint(
    openai_core: Core, fake_openai: FakeOpenAI
) -> None:
    chat = Chat(openai_core)
    parent_id = await chat.post("alice", "a red fox in the snow")
    job = await chat.finish(await chat.say("bob", f"/remix {parent_id} the fox at night, dark blue"))
    assert job.status == "done", job.error
    parent = await _post(openai_core, parent_id)
    assert fake_openai.edit_images == [_bytes(openai_core, parent)]
    [fields] = fake_openai.edit_requests
    assert fields["prompt"] == "the fox at night, dark blue" and fields["model"] == "gpt-image-2"
    assert fields["image"]["content_type"] == "image/png"
    assert len(fake_openai.image_requests) == 1  # only the parent came from the generations endpoint
    remix = await _post(openai_core, job.post_id or 0)
    assert remix.origin == "image" and remix.parent_id == parent_id


async def test_a_variation_button_also_starts_from_the_parents_picture(
    openai_core: Core, fake_openai: FakeOpenAI
) -> None:
    chat = Chat(openai_core)
    parent_id = await chat.post("alice", "a lighthouse in a storm")
    job = await chat.finish(await chat.press("bob", f"vary {parent_id}"))
    assert job.status == "done", job.error
    assert fake_openai.edit_images == [_bytes(openai_core, await _post(openai_core, parent_id))]
    assert fake_openai.edit_requests[0]["prompt"] == "a lighthouse in a storm"


async def test_a_model_that_cannot_edit_remixes_from_the_prompt_and_the_caption_says_so(
    settings: Settings, database_url: str, fake_openai: FakeOpenAI
) -> None:
    core = await _openai_core(settings, fake_openai, "compatible-painter-1")
    try:
        chat = Chat(core)
        parent_id = await chat.post("alice", "a red fox in the snow")
        job = await chat.finish(await chat.say("bob", f"/remix {parent_id} a blue fox"))
        assert job.status == "done", job.error
        assert fake_openai.edit_requests == [] and len(fake_openai.image_requests) == 2
        shown = await chat.text("bob", f"/post {job.post_id}")
        assert "made from the prompt alone" in shown and f"Remix of #{parent_id} by @alice" in shown
    finally:
        await core.aclose()
        await empty_tables(database_url)


async def test_an_offline_remix_looks_like_its_parent_and_an_unrelated_image_does_not(core: Core) -> None:
    chat = Chat(core)
    parent_id = await chat.post("alice", "a city skyline at sunset")
    other_id = await chat.post("carol", "a city skyline at sunset --seed 7")  # same words, another picture
    job = await chat.finish(await chat.say("bob", f"/remix {parent_id} the skyline in blue, misty"))
    assert job.status == "done", job.error
    parent, other, remix = [_bytes(core, await _post(core, i)) for i in (parent_id, other_id, job.post_id or 0)]
    assert similarity(parent, remix) > 0.8
    assert similarity(parent, other) < 0.5
    assert remix != parent
    assert (await _post(core, job.post_id or 0)).origin == "image"


def test_the_offline_transformation_takes_the_prompts_colour_and_mood() -> None:
    backend = LocalBackend()
    grey = io.BytesIO()
    Image.new("RGB", (64, 64), (128, 128, 128)).save(grey, format="PNG")
    red = backend.generate_sync(ImageRequest("red", 1, 256, 256, source=grey.getvalue()))
    dark = backend.generate_sync(ImageRequest("dark", 1, 256, 256, source=grey.getvalue()))
    with Image.open(io.BytesIO(red.data)) as r, Image.open(io.BytesIO(dark.data)) as d:
        rr, rg, rb = (sum(c) / len(c) for c in zip(*r.convert("RGB").get_flattened_data(), strict=True))
        dark_mean = sum(d.convert("L").get_flattened_data()) / (256 * 256)
    assert rr > rg + 20 and rr > rb + 20
    assert dark_mean < 110
