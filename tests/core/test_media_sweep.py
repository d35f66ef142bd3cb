"""The media sweep: files no row names go once they are old enough; what a row names, what is young,
and anything outside the store's own layout stays; caches go only after a week unused."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import select

from core import media_sweep
from core.app import Core, bootstrap
from core.config import Settings
from core.feed.collage import Tile, collage_file
from core.gen.media import MediaStore
from core.models import GenerationJob, Post
from core.params import Upload
from tests.conftest import empty_tables
from tests.support import Chat, actor

AGE = timedelta(hours=1)
DAY = 24 * 3600.0


def age_file(path: Path, seconds: float) -> None:
    """Make the file look written `seconds` ago."""
    then = time.time() - seconds
    os.utime(path, (then, then), follow_symlinks=False)


def age_all(root: Path, seconds: float) -> None:
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            age_file(path, seconds)


async def sweep(core: Core, now: float | None = None) -> media_sweep.Swept:
    return await media_sweep.sweep(core.sessions, core.media, AGE, now)


async def image_paths(core: Core) -> list[str]:
    async with core.sessions() as session:
        return list(await session.scalars(select(Post.image_path).order_by(Post.id)))


def photo() -> bytes:
    picture = Image.new("RGB", (96, 64), (30, 120, 200))
    out = io.BytesIO()
    picture.save(out, format="JPEG")
    return out.getvalue()


async def test_an_old_file_no_row_names_goes_and_the_posts_file_stays(chat: Chat) -> None:
    await chat.post("alice")
    [named] = await image_paths(chat.core)
    orphan = await chat.core.media.save(b"an image whose post never committed", "png")
    age_all(chat.core.media.root, 2 * AGE.total_seconds())
    swept = await sweep(chat.core)
    assert not chat.core.media.path(orphan).exists()
    assert chat.core.media.path(named).exists()
    assert (swept.removed, swept.kept, swept.failed) == (1, 1, 0)


async def test_a_young_file_no_row_names_stays(chat: Chat) -> None:
    """Another process may have just saved it, its post not yet committed."""
    young = await chat.core.media.save(b"an image whose post is on its way", "png")
    age_file(chat.core.media.path(young), AGE.total_seconds() - 60)
    swept = await sweep(chat.core)
    assert chat.core.media.path(young).exists()
    assert swept.removed == 0


async def test_every_kind_of_row_keeps_its_file(chat: Chat) -> None:
    core = chat.core
    visible = await chat.post("alice", "a visible fox")
    deleted = await chat.post("alice", "a fox to delete")
    assert "deleted" in (await chat.text("alice", f"/delete {deleted}")).lower()
    # An upload is named only by its job (the post made from it has an image of its own).
    job = await chat.finish(await core.handle(actor("bob"), "/edit a fox from my photo", upload=Upload(photo())))
    assert job.status == "done" and job.source_path is not None
    remix = await chat.finish(await chat.say("carol", f"/remix {visible} a fox in the rain"))
    assert remix.source_path is not None
    age_all(core.media.root, 2 * DAY)
    named = {*await image_paths(core), job.source_path}
    async with core.sessions() as session:
        assert (await session.get(Post, deleted)) is not None  # kept, as deleted, until the purge
    swept = await sweep(core)
    assert swept.removed == 0
    for path in named:
        assert core.media.path(path).exists(), path


async def test_a_file_saved_again_is_young_again(chat: Chat) -> None:
    """Saved bytes that already lie in the store (an orphan's, say) are not written again; their time is
    refreshed, so a sweep between the save and the row's commit leaves them."""
    media = chat.core.media
    data = b"the same picture, uploaded a second time"
    path = await media.save(data, "png")
    age_file(media.path(path), 2 * DAY)
    assert await media.save(data, "png") == path
    await sweep(chat.core)
    assert media.path(path).exists()


async def test_a_crash_between_the_file_and_its_post_leaves_a_file_the_sweep_removes_later(
    chat: Chat, monkeypatch: pytest.MonkeyPatch
) -> None:
    core = chat.core
    core.queue.config = replace(core.queue.config, poll_seconds=0.02, backoff_base=0.01)
    original = core.queue._complete
    dropped: list[str] = []

    async def killed_before_the_commit_once(job: GenerationJob, stored: object, handle: str) -> object:
        if not dropped:  # as a kill -9 after the fsync'd save: the file stays, no post names it
            dropped.append(stored.path)  # type: ignore[attr-defined]
            raise ConnectionError("the process died here")
        return await original(job, stored, handle)  # type: ignore[arg-type]

    monkeypatch.setattr(core.queue, "_complete", killed_before_the_commit_once)
    job = await chat.finish(await chat.say("alice", "/imagine an unlucky fox"))
    assert job.status == "done" and job.attempts == 2
    [posted] = await image_paths(core)
    [left] = dropped
    assert left != posted and core.media.path(left).exists()

    assert (await sweep(core)).removed == 0  # still young: it might have been a commit on its way
    later = time.time() + AGE.total_seconds() + 60
    swept = await sweep(core, now=later)
    assert swept.removed == 1
    assert not core.media.path(left).exists()
    assert core.media.path(posted).exists()


async def test_caches_go_after_a_week_unused_and_a_use_keeps_them(chat: Chat) -> None:
    core = chat.core
    await chat.post("alice")
    [image] = await image_paths(core)
    tiles = [Tile(core.media.path(image), "#1 @alice")]
    collage = await collage_file(core.media, tiles)
    thumbs = list((core.media.root / "thumbs").rglob("*.jpg"))
    assert len(thumbs) == 1
    age_all(core.media.root, 2 * DAY)
    assert (await sweep(core)).expired == 0  # unnamed, but a cache: a week
    age_all(core.media.root, 8 * DAY)
    assert await collage_file(core.media, tiles) == collage  # used again: young again, thumbnail not needed
    swept = await sweep(core)
    assert collage.exists() and not thumbs[0].exists()
    assert core.media.path(image).exists()
    assert swept.expired == 1


async def test_what_lies_outside_the_stores_layout_and_links_are_left_alone(chat: Chat, tmp_path: Path) -> None:
    media = chat.core.media
    outside = tmp_path / "precious.png"
    outside.write_bytes(b"not the store's")
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "ab").mkdir(parents=True)
    (elsewhere / "ab" / "deep.png").write_bytes(b"not the store's either")
    (media.root / "ab").mkdir(parents=True)
    (media.root / "ab" / "link.png").symlink_to(outside)
    (media.root / "cd").symlink_to(elsewhere / "ab", target_is_directory=True)
    (media.root / "thumbs").mkdir()
    (media.root / "thumbs" / "ef").symlink_to(elsewhere / "ab", target_is_directory=True)
    (media.root / "previews").mkdir()
    (media.root / "previews" / "digest-alice.jpg").write_bytes(b"an operator's preview")
    (media.root / "notes.txt").write_text("put here by hand")
    (media.root / "ab" / "nested").mkdir()
    (media.root / "ab" / "nested" / "x.png").write_bytes(b"not the layout")
    temporary = media.root / "ab" / ".tmp-abc123"
    temporary.write_bytes(b"half a write, cut short")
    age_all(tmp_path, 30 * DAY)  # the media root is in there too
    swept = await sweep(chat.core)
    assert not temporary.exists()  # the one leftover of ours
    assert swept.removed == 1
    assert outside.read_bytes() == b"not the store's"
    assert (media.root / "ab" / "link.png").is_symlink()
    assert (elsewhere / "ab" / "deep.png").exists()
    assert (media.root / "previews" / "digest-alice.jpg").exists()
    assert (media.root / "notes.txt").exists()
    assert (media.root / "ab" / "nested" / "x.png").exists()


async def test_a_file_that_cannot_be_removed_is_counted_and_the_rest_still_go(
    chat: Chat, monkeypatch: pytest.MonkeyPatch
) -> None:
    media = chat.core.media
    stuck = await media.save(b"on a read-only mount", "png")
    gone = await media.save(b"an ordinary orphan", "png")
    age_all(media.root, 2 * DAY)
    unlink = os.unlink

    def refusing(path: str) -> None:
        if path == str(media.path(stuck)):
            raise PermissionError(13, "Permission denied")
        unlink(path)

    monkeypatch.setattr(media_sweep.os, "unlink", refusing)
    swept = await sweep(chat.core)
    assert (swept.removed, swept.failed) == (1, 1)
    assert media.path(stuck).exists() and not media.path(gone).exists()


async def test_names_are_read_in_chunks(chat: Chat, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(media_sweep, "CHUNK", 2)
    for prompt in ("one", "two", "three", "four", "five"):
        await chat.post("alice", f"fox {prompt}")
    assert await media_sweep.referenced(chat.core.sessions) == set(await image_paths(chat.core))


async def test_the_scheduler_sweeps_at_start_and_logs_one_line(
    settings: Settings, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    media = MediaStore(settings.media_dir)
    orphan = await media.save(b"left by a kill -9 before this start", "png")
    age_file(media.path(orphan), 2 * DAY)
    app = await bootstrap(settings)
    caplog.set_level(logging.INFO, logger="core.scheduler")
    try:
        await app.start(schedule=True)
        async with asyncio.timeout(10):
            while media.path(orphan).exists():  # noqa: ASYNC110 - the file system is the state
                await asyncio.sleep(0.02)
            while not any("media sweep: 1 unused" in r.getMessage() for r in caplog.records):  # noqa: ASYNC110
                await asyncio.sleep(0.02)
    finally:
        await app.aclose()
        await empty_tables(database_url)


def test_the_age_may_not_be_under_an_hour() -> None:
    from core.config import ConfigError, load_settings

    with pytest.raises(ConfigError, match="MEDIA_ORPHAN_AGE_HOURS"):
        load_settings(_env_file=None, media_orphan_age_hours=0.5)
