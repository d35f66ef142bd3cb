"""A person's own photo as the start of a post: checked before anything else (size, real image content,
pixel count, moderation), stripped of EXIF and GPS, and the post records it; a refused upload is one
line and leaves nothing behind. Through the console (`/edit <path> <prompt>`) and the core."""

from __future__ import annotations

import asyncio
import io
import os
from pathlib import Path

from PIL import Image
from pydantic import SecretStr
from sqlalchemy import select

from bots.console.chat import ConsoleChat
from core.app import Core, bootstrap
from core.config import Settings
from core.models import Delivery, GenerationJob, Post
from core.params import Upload
from core.uploads import clean
from tests.conftest import empty_tables
from tests.fakes.openai_server import FakeOpenAI, flagged, make_bomb
from tests.support import actor

GPS_IFD = 0x8825


def photo_with_gps(size: tuple[int, int] = (320, 240)) -> bytes:
    picture = Image.new("RGB", size, (30, 120, 200))
    for x in range(0, size[0], 20):  # a composition, not a flat colour
        picture.paste((240, 200, 40), (x, 0, x + 8, size[1]))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x0110] = "Phone 12"  # Model
    exif.get_ifd(GPS_IFD).update({1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 36.0)})
    out = io.BytesIO()
    picture.save(out, format="JPEG", exif=exif)
    return out.getvalue()


def media_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")) if root.exists() else []


async def console(core: Core, name: str, *lines: str) -> str:
    out = io.StringIO()
    chat = ConsoleChat(core, out=out, name=name)
    for line in lines:
        try:
            # The console waits for a job it started with no limit of its own: a stuck job fails the test, with
            # what the jobs and the outbox looked like, instead of hanging the run.
            async with asyncio.timeout(60):
                await chat.line(line)
        except TimeoutError:
            raise AssertionError(f"{line!r} did not finish: {await stuck(core)}\n{out.getvalue()}") from None
    return out.getvalue()


async def stuck(core: Core) -> str:
    async with core.sessions() as session:
        jobs = (await session.execute(select(GenerationJob.id, GenerationJob.status, GenerationJob.worker))).all()
        pending = (await session.execute(select(Delivery.key, Delivery.status, Delivery.not_before))).all()
    return f"jobs {[tuple(j) for j in jobs]}, deliveries {[tuple(d) for d in pending]}"


async def only_job(core: Core) -> GenerationJob:
    async with core.sessions() as session:
        [job_id] = list(await session.scalars(select(GenerationJob.id)))
    async with asyncio.timeout(30):
        return await core.queue.wait_for(job_id)


def test_the_photo_is_reencoded_without_exif_or_gps() -> None:
    original = photo_with_gps()
    with Image.open(io.BytesIO(original)) as opened:
        assert opened.getexif().get_ifd(GPS_IFD)  # the test photo does carry GPS
    kept = clean(original)
    with Image.open(io.BytesIO(kept.data)) as opened:
        assert not opened.getexif() and not opened.getexif().get_ifd(GPS_IFD)
        assert "exif" not in opened.info and (opened.width, opened.height) == (320, 240)
    assert b"PhoneMaker" not in kept.data and b"Exif" not in kept.data


async def test_a_valid_photo_starts_a_post_that_says_so(core: Core, tmp_path: Path, media_dir: Path) -> None:
    path = tmp_path / "holiday.jpg"
    path.write_bytes(photo_with_gps())
    out = await console(core, "alice", f"/edit {path} the same, as a watercolour")
    assert "Queued" in out
    job = await only_job(core)
    assert job.status == "done", job.error
    async with core.sessions() as session:
        post = await session.get(Post, job.post_id)
    assert post is not None and post.origin == "upload"
    assert job.source_kind == "upload" and job.source_path is not None
    stored = core.media.path(job.source_path).read_bytes()
    assert b"PhoneMaker" not in stored and b"Exif" not in stored  # what is kept has no metadata
    shown = await console(core, "bob", f"/post {post.id}")
    assert "📷 Started from the author's own photo" in shown


async def test_a_file_that_is_not_an_image_is_one_line_and_nothing_is_stored(
    core: Core, tmp_path: Path, media_dir: Path
) -> None:
    fake = tmp_path / "cat.png"  # the name says picture; the content does not
    fake.write_bytes(b"#!/bin/sh\necho not a picture\n" * 50)
    out = await console(core, "alice", f"/edit {fake} a cat")
    assert "bot> That file is not a picture I can read. Send a photo (PNG, JPEG or WebP)." in out
    assert "Traceback" not in out and media_files(media_dir) == []


async def test_an_oversized_file_is_refused_by_its_size(core: Core, tmp_path: Path, media_dir: Path) -> None:
    big = tmp_path / "big.jpg"
    with big.open("wb") as handle:
        handle.write(photo_with_gps())
        handle.write(os.urandom(11_000_000))  # trailing bytes after the JPEG: a valid-looking, huge file
    out = await console(core, "alice", f"/edit {big} a big one")
    assert "bot> That picture is 11.0 MB; the limit is 10 MB." in out
    assert media_files(media_dir) == []


async def test_a_decompression_bomb_is_refused_from_its_header(core: Core, media_dir: Path) -> None:
    replies = await core.handle(actor("alice"), "/edit boom", upload=Upload(make_bomb((100_000, 100_000))))
    assert [r.text for r in replies] == ["That picture has far too many pixels to handle. Send a smaller one."]
    assert replies[0].error and media_files(media_dir) == []


async def test_a_photo_captioned_imagine_and_edit_without_a_photo(core: Core) -> None:
    replies = await core.handle(actor("alice"), "/imagine a fox, painted", upload=Upload(photo_with_gps()))
    assert replies[0].job_id is not None
    job = await only_job(core)
    assert job.source_kind == "upload" and job.status == "done"
    [missing] = await core.handle(actor("alice"), "/edit a fox")
    assert missing.text == "Send a photo with /edit <prompt> as its caption (or reply to a photo with /edit <prompt>)."
    out = await console(core, "alice", "/edit /no/such/file.png a fox")
    assert "bot> Cannot read /no/such/file.png: no such file." in out


async def test_a_flagged_picture_is_refused_when_moderation_is_on(
    settings: Settings, database_url: str, fake_openai: FakeOpenAI, media_dir: Path
) -> None:
    configured = settings.model_copy(
        update={"openai_api_key": SecretStr("sk-test"), "openai_base_url": fake_openai.base_url}
    )
    core = await bootstrap(configured)  # the offline backend, with the moderation endpoint
    await core.start()
    try:
        fake_openai.script_moderation(flagged("violence"))
        [refused] = await core.handle(actor("alice"), "/edit a fox", upload=Upload(photo_with_gps()))
        assert refused.text == "That picture was flagged by the content filter, so it can't be used."
        [sent] = fake_openai.moderation_requests
        assert sent["input"][0]["type"] == "image_url"
        assert sent["input"][0]["image_url"]["url"].startswith("data:image/jpeg;base64,")
        assert media_files(media_dir) == []
    finally:
        await core.aclose()
        await empty_tables(database_url)
