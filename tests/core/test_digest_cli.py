"""`python -m bots digest --now [--handle H]` and `python -m bots digest --preview H [--out F]`, run as
an operator would: a separate process on the same database and media folder."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from PIL import Image
from sqlalchemy import update

from core.config import Settings
from core.feed.collage import collage_size
from core.models import Identity, utcnow
from tests.fakes.platform import add_post, deliveries, set_person
from tests.support import Chat

ROOT = Path(__file__).resolve().parents[2]


def bots(settings: Settings, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG", "LC_ALL", "SYSTEMROOT"}}
    env.update(
        PYTHONPATH=str(ROOT),
        DATABASE_URL=settings.database_url,
        MEDIA_DIR=str(settings.media_dir),
        IMAGE_BACKEND="local",
    )
    # Run from an empty folder, so that a developer's .env cannot change what the test sees.
    return subprocess.run(
        [sys.executable, "-m", "bots", "digest", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def run_bots(settings: Settings, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(bots, settings, cwd, *args)


async def a_small_network(chat: Chat) -> None:
    await chat.say("alice", "/start")
    for handle in ("reader", "quiet", "blocked"):
        await chat.say(handle, "/follow alice")
    await chat.say("quiet", "/digest off")
    await chat.say("reader", "/digest 23:59 Pacific/Kiritimati")  # whatever their hour, --now queues it
    await add_post(chat.core, "alice", utcnow() - timedelta(hours=1), likes=3)
    async with chat.core.sessions() as session:
        await session.execute(update(Identity).where(Identity.chat_id == "chat-blocked").values(unreachable=True))
        await session.commit()


async def test_digest_now_queues_everyone_who_has_not_had_todays_and_a_second_run_nothing(
    chat: Chat, settings: Settings, tmp_path: Path
) -> None:
    await a_small_network(chat)
    first = await run_bots(settings, tmp_path, "--now", "--handle", "@reader")
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("Digests queued: 1 (1 people considered, 0 with nothing new, 0 unreachable).")

    rest = await run_bots(settings, tmp_path, "--now")
    assert rest.returncode == 0, rest.stderr
    # alice's only post is her own; the blocked person cannot be reached; quiet has digests off.
    assert rest.stdout.startswith("Digests queued: 0 (2 people considered, 1 with nothing new, 1 unreachable).")

    again = await run_bots(settings, tmp_path, "--now")
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("Digests queued: 0 (0 people considered")
    rows = await deliveries(chat.core, "digest")
    assert sorted(r.status for r in rows) == ["pending", "skipped", "skipped"]
    assert "Traceback" not in first.stderr + rest.stderr + again.stderr


async def test_digest_preview_writes_the_picture_and_sends_nothing(
    chat: Chat, settings: Settings, tmp_path: Path
) -> None:
    await a_small_network(chat)
    await set_person(chat.core, "reader", digest_enabled=False)  # a preview works even with digests off
    out = tmp_path / "previews" / "reader.jpg"
    done = await run_bots(settings, tmp_path, "--preview", "@reader", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"Wrote {out}"
    with Image.open(out) as picture:
        assert picture.format == "JPEG" and picture.size == collage_size(1)
    assert await deliveries(chat.core) == []

    default = await run_bots(settings, tmp_path, "--preview", "reader")
    assert default.returncode == 0, default.stderr
    written = settings.media_dir / "previews" / "digest-reader.jpg"  # under MEDIA_DIR, not the current folder
    assert default.stdout.strip() == f"Wrote {written}"
    assert written.read_bytes() == out.read_bytes()
    assert not (tmp_path / "digest-reader.jpg").exists()


async def test_digest_preview_writes_the_format_its_suffix_names_and_refuses_others(
    chat: Chat, settings: Settings, tmp_path: Path
) -> None:
    await a_small_network(chat)
    for suffix, fmt in [("png", "PNG"), ("webp", "WEBP"), ("JPEG", "JPEG")]:
        out = tmp_path / f"reader.{suffix}"
        done = await run_bots(settings, tmp_path, "--preview", "reader", "--out", str(out))
        assert done.returncode == 0, done.stderr
        with Image.open(out) as picture:
            assert picture.format == fmt and picture.size == collage_size(1)
    refused = await run_bots(settings, tmp_path, "--preview", "reader", "--out", str(tmp_path / "reader.gif"))
    assert refused.returncode == 1
    assert refused.stderr == "A preview file must end in .jpg, .jpeg, .png, .webp, not 'reader.gif'.\n"
    assert not (tmp_path / "reader.gif").exists()


async def test_an_unknown_handle_is_one_line_and_exit_code_one(chat: Chat, settings: Settings, tmp_path: Path) -> None:
    await a_small_network(chat)
    for args, line in [
        (("--preview", "@nobody"), "Nobody is called @nobody."),
        (("--now", "--handle", "nobody"), "Nobody is called @nobody."),
        (("--preview", "alice"), "@alice has nothing new for a digest right now."),
    ]:
        done = await run_bots(settings, tmp_path, *args)
        assert done.returncode == 1, (args, done.stdout, done.stderr)
        assert done.stderr == line + "\n", args
        assert done.stdout == ""
    assert await deliveries(chat.core) == []
