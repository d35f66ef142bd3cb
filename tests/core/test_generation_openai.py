"""The whole pipeline with the real `openai` SDK against the local fake images server:
/imagine -> moderation -> persisted job -> OpenAI backend -> retries -> post."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from PIL import Image
from pydantic import SecretStr
from sqlalchemy import func, select

from core.app import Core, bootstrap
from core.config import Settings
from core.models import GenerationJob, ModerationRefusal, Post
from tests.conftest import empty_tables
from tests.fakes.openai_server import (
    FakeOpenAI,
    content_policy,
    flagged,
    html_page,
    image_bomb,
    image_ok,
    insufficient_quota,
    rate_limited,
    server_error,
    slow,
)
from tests.support import Chat


@pytest.fixture
def generation_timeout() -> float:
    return 0.5  # short, so timeouts are quick to test; override where the fake needs time to make a big image


@pytest.fixture
async def openai_core(
    settings: Settings, database_url: str, fake_openai: FakeOpenAI, generation_timeout: float
) -> AsyncIterator[Core]:
    configured = settings.model_copy(
        update={
            "image_backend": "openai",
            "openai_api_key": SecretStr("sk-test-not-a-real-key"),
            "openai_base_url": fake_openai.base_url,
            "openai_image_model": "gpt-image-2",
            "generation_timeout_seconds": generation_timeout,
            "breaker_failure_threshold": 3,
            "breaker_cooldown_seconds": 30,
            "blocklist": ("gore",),
            "daily_quota": 5,
        }
    )
    core = await bootstrap(configured)
    core.queue.config = replace(core.queue.config, poll_seconds=0.02, backoff_base=0.05)
    await core.start()
    yield core
    await core.aclose()
    await empty_tables(database_url)


async def jobs(core: Core) -> list[GenerationJob]:
    async with core.sessions() as session:
        return list(await session.scalars(select(GenerationJob).order_by(GenerationJob.id)))


async def test_an_openai_image_becomes_a_post_with_the_revised_prompt(
    openai_core: Core, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script_images(image_ok(revised_prompt="A red fox standing in fresh snow"))
    chat = Chat(openai_core)
    post_id = await chat.post("alice", "a red fox in the snow --ar 16:9")
    async with openai_core.sessions() as session:
        post = await session.get(Post, post_id)
    assert post is not None
    assert post.backend == "openai" and post.model == "gpt-image-2"
    assert post.revised_prompt == "A red fox standing in fresh snow"
    sent = fake_openai.image_requests[-1]
    assert sent["model"] == "gpt-image-2" and sent["prompt"] == "a red fox in the snow"
    width, height = (int(v) for v in sent["size"].split("x"))
    assert abs(width / height - 16 / 9) < 0.02
    assert openai_core.media.path(post.image_path).exists()


async def test_a_429_is_retried_after_its_retry_after(openai_core: Core, fake_openai: FakeOpenAI) -> None:
    fake_openai.script_images(rate_limited(retry_after="1"), image_ok())
    chat = Chat(openai_core)
    started = time.monotonic()
    await chat.post("alice", "a patient fox")
    assert time.monotonic() - started >= 0.9
    [job] = await jobs(openai_core)
    assert job.status == "done" and job.attempts == 2
    assert len(fake_openai.image_requests) == 2


async def test_a_500_and_a_timeout_are_retried_and_make_one_post(openai_core: Core, fake_openai: FakeOpenAI) -> None:
    fake_openai.script_images(server_error(500), slow(3.0), image_ok())
    chat = Chat(openai_core)
    await chat.post("alice", "a persistent fox")
    [job] = await jobs(openai_core)
    assert job.status == "done" and job.attempts == 3
    async with openai_core.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Post)) == 1


async def test_a_content_policy_refusal_is_told_plainly_not_retried_and_costs_no_quota(
    openai_core: Core,
    fake_openai: FakeOpenAI,
) -> None:
    fake_openai.script_images(content_policy())
    chat = Chat(openai_core)
    job = await chat.finish(await chat.say("alice", "/imagine something the model refuses"))
    assert job.status == "failed" and job.attempts == 1
    assert "content policy" in (job.error or "").lower()
    assert len(fake_openai.image_requests) == 1
    assert "0 of 5" in await chat.text("alice", "/quota")


async def test_an_exhausted_account_is_not_retried(openai_core: Core, fake_openai: FakeOpenAI) -> None:
    fake_openai.script_images(insufficient_quota())
    chat = Chat(openai_core)
    job = await chat.finish(await chat.say("alice", "/imagine a fox"))
    assert job.status == "failed" and job.attempts == 1
    assert len(fake_openai.image_requests) == 1


async def test_the_circuit_breaker_pauses_new_requests_and_says_why(openai_core: Core, fake_openai: FakeOpenAI) -> None:
    fake_openai.default_image = server_error(503)
    chat = Chat(openai_core)
    openai_core.queue.config = replace(openai_core.queue.config, max_attempts=3)
    job = await chat.finish(await chat.say("alice", "/imagine a fox in a storm"))
    assert job.status == "failed"
    reply = await chat.text("bob", "/imagine another fox")
    assert "paused" in reply and "quota" in reply
    async with openai_core.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(GenerationJob)) == 1


async def test_moderation_refusals_are_told_recorded_and_shown_to_admins(
    openai_core: Core,
    fake_openai: FakeOpenAI,
) -> None:
    chat = Chat(openai_core)
    blocked = await chat.text("alice", "/imagine lots of GORE please")
    assert "not allowed" in blocked
    fake_openai.script_moderation(flagged("violence"))
    flagged_reply = await chat.text("bob", "/imagine something violent")
    assert "flagged" in flagged_reply and "violence" in flagged_reply
    assert fake_openai.image_requests == []
    async with openai_core.sessions() as session:
        refusals = list(await session.scalars(select(ModerationRefusal).order_by(ModerationRefusal.id)))
        assert await session.scalar(select(func.count()).select_from(GenerationJob)) == 0
    assert [(r.source, r.prompt) for r in refusals] == [
        ("blocklist", "lots of GORE please"),
        ("openai", "something violent"),
    ]
    assert "Only admins" in await chat.text("alice", "/refusals")
    listing = await chat.text("admin", "/refusals")
    assert "@alice (blocklist)" in listing and "@bob (openai)" in listing


async def test_a_restart_requeues_running_openai_jobs(
    openai_core: Core, fake_openai: FakeOpenAI, settings: Settings
) -> None:
    fake_openai.script_images(slow(2.0))
    chat = Chat(openai_core)
    [progress] = await chat.say("alice", "/imagine a fox that survives a restart")
    async with asyncio.timeout(10):
        while not fake_openai.image_requests:  # noqa: ASYNC110 - the request is in flight on the fake
            await asyncio.sleep(0.02)
    await openai_core.queue.stop(grace=0)  # the process is stopped mid-request
    assert (await jobs(openai_core))[0].status == "queued"  # given back at once, not left to its lease
    fake_openai.script_images(image_ok())
    await openai_core.queue.start()  # and starts again
    job = await chat.finish([progress])
    assert job.status == "done"
    async with openai_core.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Post)) == 1


def tracebacks(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.exc_info]


async def test_a_decompression_bomb_fails_its_job_at_once_with_a_friendly_line_and_costs_no_quota(
    openai_core: Core, fake_openai: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    fake_openai.script_images(image_bomb((100_000, 100_000)))
    chat = Chat(openai_core)
    with caplog.at_level(logging.INFO):
        job = await chat.finish(await chat.say("alice", "/imagine an endless fox"))
    assert job.status == "failed" and job.attempts == 1
    assert job.error == (
        "The image service sent an image far too large to handle. "
        "Try again with another prompt. Your quota was not used."
    )
    assert tracebacks(caplog) == []
    assert "0 of 5" in await chat.text("alice", "/quota")


async def test_an_html_page_from_the_image_server_is_retried_without_a_traceback(
    openai_core: Core, fake_openai: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    fake_openai.script_images(html_page(), image_ok())
    chat = Chat(openai_core)
    with caplog.at_level(logging.INFO):
        await chat.post("alice", "a fox behind a proxy")
    [job] = await jobs(openai_core)
    assert job.status == "done" and job.attempts == 2
    assert tracebacks(caplog) == []
    [retry] = [r.getMessage() for r in caplog.records if "retrying in" in r.getMessage()]
    assert "could not read; retrying in" in retry  # one sentence, not "read.; retrying"


async def test_a_final_failure_reads_as_final(openai_core: Core, fake_openai: FakeOpenAI) -> None:
    fake_openai.default_image = html_page(status=502)
    openai_core.queue.config = replace(openai_core.queue.config, max_attempts=2)
    chat = Chat(openai_core)
    job = await chat.finish(await chat.say("alice", "/imagine a fox that never comes"))
    assert job.status == "failed"
    assert job.error == (
        "The image service had a problem on its side. I gave up after 2 attempts. Your quota was not used."
    )


@pytest.mark.parametrize("generation_timeout", [30.0])  # the fake takes a while to make a 10 MB PNG
async def test_an_oversized_image_is_posted_within_every_platforms_photo_limits(
    openai_core: Core, fake_openai: FakeOpenAI
) -> None:
    # Telegram refuses photos over 10 MB or whose width + height exceed 10,000.
    fake_openai.script_images(image_ok(size=(9600, 800)), image_ok(size=(2000, 2000), noise=True))
    chat = Chat(openai_core)
    wide, noisy = await chat.post("alice", "a long fox --ar 16:9"), await chat.post("alice", "a fox in static")
    async with openai_core.sessions() as session:
        posts = [await session.get(Post, wide), await session.get(Post, noisy)]
    for post in posts:
        assert post is not None
        path = openai_core.media.path(post.image_path)
        with Image.open(path) as stored:
            assert stored.size == (post.width, post.height)
        assert post.width + post.height <= 10_000 and path.stat().st_size <= 10_000_000
    assert posts[0] is not None and abs(posts[0].width / posts[0].height - 12) < 0.05
