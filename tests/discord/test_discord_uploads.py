"""Pictures attached to Discord slash commands: the IMAGE parameter of the core's declaration is an
attachment option; the real discord.py receives it in `data.resolved.attachments`, the adapter fetches
it from the (fake) CDN within UPLOAD_MAX_MB, and /edit and /verify get an `Upload`."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo
from sqlalchemy import select

from core.app import Core
from core.config import Settings
from core.models import GenerationJob, Post
from tests.core.test_uploads import media_files, photo_with_gps
from tests.discord.test_discord_bot import SEND, Running, answered, imagine, start
from tests.fakes.discord_api import FakeDiscord, check_outgoing, point_discord_py_at
from tests.fakes.discord_interactions import MESSAGE

PHOTO_OPTION = 11  # ATTACHMENT


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"upload_max_mb": 1.0})  # the core's and the adapter's limit


@pytest.fixture
async def running(
    core: Core, settings: Settings, discord_api: FakeDiscord, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Running]:
    point_discord_py_at(discord_api, monkeypatch)
    bot = await start(core, settings, discord_api, discord_guild_id=int(discord_api.guild_id))
    yield bot
    await bot.close()
    check_outgoing(discord_api)


def png(colour: tuple[int, int, int] = (1, 2, 3)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 64), colour).save(out, format="PNG")
    return out.getvalue()


async def one_line(api: FakeDiscord, pushed: Any) -> str:
    """The answer to a command that is refused: one ephemeral message."""
    await answered(api, pushed)
    async with asyncio.timeout(10):
        while pushed.original is None or pushed.original["flags"] & (1 << 7):  # noqa: ASYNC110 (deferred)
            await asyncio.sleep(0.02)
    assert pushed.ephemeral, pushed.original
    return str(pushed.original["content"])


async def test_edit_and_verify_take_an_attachment_option(running: Running, discord_api: FakeDiscord) -> None:
    synced = {c["name"]: c for c in discord_api.commands[discord_api.guild_id]}
    [photo] = [o for o in synced["edit"]["options"] if o["name"] == "photo"]
    assert photo["type"] == PHOTO_OPTION and photo["required"]
    assert [(o["name"], o["type"]) for o in synced["verify"]["options"]] == [("image", PHOTO_OPTION)]


async def test_edit_with_a_png_makes_a_post_that_started_from_the_upload(
    running: Running, discord_api: FakeDiscord, media_dir: Path
) -> None:
    alice = discord_api.add_user("alice")
    sent = discord_api.attachment(photo_with_gps(), "holiday.jpg", "image/jpeg")
    pushed = await answered(
        discord_api, await discord_api.slash("edit", alice, photo=sent, prompt="the same, as a watercolour")
    )
    assert pushed.ephemeral and "on its way" in pushed.original["content"], pushed.original
    assert discord_api.cdn_fetches == [sent["id"]]
    await discord_api.wait_for(SEND, lambda c: "watercolour" in str(c.body))
    core = running.bot.core
    async with asyncio.timeout(30):
        await core.drain()
    async with core.sessions() as session:
        [job] = list(await session.scalars(select(GenerationJob)))
        post = await session.get(Post, job.post_id)
    assert job.status == "done" and job.source_kind == "upload"
    assert post is not None and post.origin == "upload"
    stored = core.media.path(job.source_path or "").read_bytes()
    assert b"PhoneMaker" not in stored  # EXIF and GPS gone, as from any other platform


async def test_a_file_that_is_not_a_picture_is_one_line_and_nothing_is_stored(
    running: Running, discord_api: FakeDiscord, media_dir: Path
) -> None:
    alice = discord_api.add_user("alice")
    sent = discord_api.attachment(b"%PDF-1.7 not a picture\n" * 40, "fox.png", "image/png")
    pushed = await discord_api.slash("edit", alice, photo=sent, prompt="a fox")
    assert (
        await one_line(discord_api, pushed)
        == "That file is not a picture I can read. Send a photo (PNG, JPEG or WebP)."
    )
    assert pushed.response_type == MESSAGE
    assert media_files(media_dir) == []
    async with running.bot.core.sessions() as session:
        assert list(await session.scalars(select(GenerationJob))) == []


async def test_an_oversized_attachment_is_refused_by_its_size_without_being_fetched(
    running: Running, discord_api: FakeDiscord, media_dir: Path
) -> None:
    alice = discord_api.add_user("alice")
    big = photo_with_gps() + b"\0" * 1_200_000  # a valid start, 1.2 MB in all; the limit here is 1 MB
    sent = discord_api.attachment(big, "big.jpg", "image/jpeg")
    pushed = await discord_api.slash("edit", alice, photo=sent, prompt="a big one")
    assert await one_line(discord_api, pushed) == f"That picture is {len(big) / 1e6:.1f} MB; the limit is 1 MB."
    assert discord_api.cdn_fetches == []  # Discord said how big it is: not downloaded at all
    assert media_files(media_dir) == []
    verified = await discord_api.slash("verify", alice, image=sent)
    assert (await one_line(discord_api, verified)).endswith("the limit is 1 MB.")
    assert discord_api.cdn_fetches == []


async def test_verify_a_genuine_an_altered_and_a_foreign_picture(running: Running, discord_api: FakeDiscord) -> None:
    alice, dave = discord_api.add_user("alice"), discord_api.add_user("dave")
    message = await imagine(running, discord_api, alice, "a lighthouse")
    [genuine] = discord_api.attachment_bytes(message)
    async with running.bot.core.sessions() as session:
        post_id = await session.scalar(select(Post.id))

    async def verify(data: bytes, name: str) -> str:
        pushed = await answered(
            discord_api, await discord_api.slash("verify", dave, image=discord_api.attachment(data, name))
        )
        return str(pushed.original["content"])

    assert (
        await verify(genuine, "lighthouse.png")
        == f"✅ Made here: #{post_id} by @alice, from the prompt “a lighthouse”."
    )
    with Image.open(io.BytesIO(genuine)) as opened:
        opened.load()
        info = PngInfo()
        for key, value in opened.text.items():  # type: ignore[attr-defined]
            info.add_text(key, value)  # the signature copied as it was, over changed pixels
        opened.putpixel((5, 5), (255, 0, 255))
        out = io.BytesIO()
        opened.save(out, format="PNG", pnginfo=info)
    assert (await verify(out.getvalue(), "edited.png")).startswith(f"⚠️ Altered: made here as #{post_id} by @alice")
    assert await verify(png(), "mine.png") == "❌ Not made here: the picture carries no signature of this network."


async def test_a_download_stops_past_the_limit_whatever_size_was_claimed(
    running: Running, discord_api: FakeDiscord, media_dir: Path
) -> None:
    alice = discord_api.add_user("alice")
    big = photo_with_gps() + b"\0" * 20_000_000  # more than socket buffers hold: the CDN waits on the reader
    sent = discord_api.attachment(big, "big.jpg", "image/jpeg") | {"size": 1000}  # a size that lies
    pushed = await discord_api.slash("edit", alice, photo=sent, prompt="a big one")
    assert (await one_line(discord_api, pushed)).endswith("MB; the limit is 1 MB.")
    assert discord_api.cdn_fetches == [sent["id"]] and discord_api.cdn_bytes_sent < 10_000_000
    assert media_files(media_dir) == []
