"""The console adapter: `python -m bots` driven through a pipe as its own process, and the chat in-process."""

from __future__ import annotations

import asyncio
import io
import os
import re
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bots.console.chat import ConsoleChat
from core.app import Core
from core.feed.notifications import batch_pass

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = [
    "/as alice",
    "/start",
    "/imagine a red fox in the snow --seed 7",
    "like 1",  # typing a shown button's action presses it
    "/as bob",
    "/follow alice",
    "/feed",
    "remix 1",  # the Remix button asks for a prompt...
    "a blue fox in the rain",  # ...and this line answers it
    "/imagine",
    "/imagine a fox --ar 7:3",
    "/like twelve",
    "/post 99",
    "/frobnicate",
    "hello there",
    "/assist",  # not /as
    "/profile alice",
]


def run_bots(tmp_path: Path, lines: list[str]) -> subprocess.CompletedProcess[str]:
    # A clean environment: no Telegram/Discord tokens or API keys from the developer's shell.
    env = {k: v for k, v in os.environ.items() if k in {"PATH", "LANG", "LC_ALL", "SYSTEMROOT"}}
    env.update(
        HOME=str(tmp_path),
        USER="tester",
        PYTHONPATH=str(ROOT),
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'app.db'}",
        MEDIA_DIR=str(tmp_path / "media"),
        IMAGE_BACKEND="local",
    )
    return subprocess.run(
        [sys.executable, "-m", "bots"],
        cwd=ROOT,
        env=env,
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def session_output(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    tmp_path = tmp_path_factory.mktemp("console")
    return run_bots(tmp_path, SCRIPT), tmp_path


def test_a_scripted_session_exits_cleanly_without_tracebacks(
    session_output: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    done, tmp_path = session_output
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert "something went wrong" not in done.stdout
    log = (tmp_path / "bots.log").read_text()  # the console writes its log beside the media folder
    assert "Traceback" not in log and " ERROR " not in log


def test_the_session_shows_posts_likes_follows_feed_and_remix(
    session_output: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    out = session_output[0].stdout
    assert "Welcome, @alice!" in out
    assert "#1 by @alice" in out and "[❤️ 0] like 1" in out
    assert "You liked #1 (1 ❤️)" in out and "[❤️ 1] like 1" in out
    assert "You are now bob." in out
    assert "You now follow @alice" in out
    assert "Describe your remix of #1" in out and "type your answer" in out
    assert "#2 by @bob" in out and "Remix of #1 by @alice" in out
    assert "1 post · 1 follower · 0 following · 1 like received" in out


def test_bad_input_in_the_session_gets_one_clear_line_each(
    session_output: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    out = session_output[0].stdout
    assert "bot> Describe the image you want" in out
    assert "bot> Unknown aspect ratio '7:3'" in out
    assert "bot> twelve is not a post number" in out
    assert "bot> There is no post #99." in out
    assert "bot> Unknown command /frobnicate" in out
    assert "bot> Send /imagine <prompt>" in out
    assert "bot> Unknown command /assist" in out


def test_printed_image_paths_exist_under_the_media_dir(
    session_output: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    out, tmp_path = session_output[0].stdout, session_output[1]
    paths = {Path(p) for p in re.findall(r"image: (\S+)", out)}
    assert len(paths) == 2  # the fox and its remix
    media = (tmp_path / "media").resolve()
    for path in paths:
        assert path.is_file() and path.resolve().is_relative_to(media), path


def test_the_session_is_in_the_database(session_output: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    database = session_output[1] / "app.db"
    with sqlite3.connect(database) as conn:
        posts = conn.execute("SELECT id, parent_id, like_count, prompt FROM posts ORDER BY id").fetchall()
        follows = conn.execute(
            "SELECT a.handle, b.handle FROM follows"
            " JOIN people a ON a.id = follower_id JOIN people b ON b.id = followee_id"
        ).fetchall()
    assert posts == [(1, None, 1, "a red fox in the snow"), (2, 1, 0, "a blue fox in the rain")]
    assert follows == [("bob", "alice")]


def test_end_of_input_right_after_imagine_still_delivers_the_image(tmp_path: Path) -> None:
    done = run_bots(tmp_path, ["/imagine waves at sunset"])
    assert done.returncode == 0, done.stderr
    [path] = re.findall(r"image: (\S+)", done.stdout)
    assert Path(path).is_file()


# The chat in-process


async def test_as_switches_person_and_needs_a_name(core: Core) -> None:
    out = io.StringIO()
    chat = ConsoleChat(core, out=out, name="carol")
    await chat.line("/as")
    await chat.line("/as Dave Smith")
    await chat.line("/start")
    await chat.line("/asdf")
    text = out.getvalue()
    assert "Usage: /as <name>. You are carol." in text
    assert "You are now dave_smith." in text and "Welcome, @dave_smith!" in text
    assert "Unknown command /asdf" in text


async def test_as_cleans_the_name_like_any_platform_name(core: Core) -> None:
    out = io.StringIO()
    chat = ConsoleChat(core, out=out, name="carol")
    await chat.line("/as b\x00o\u200bb")
    await chat.line("/start")
    text = out.getvalue()
    assert "You are now bob." in text and "Welcome, @bob!" in text


async def test_a_missing_login_name_falls_back_to_a_default(core: Core, monkeypatch: pytest.MonkeyPatch) -> None:
    import getpass

    def no_login() -> str:
        raise KeyError("getpwuid(): uid not found: 4242")  # a container user without a passwd entry

    monkeypatch.setattr(getpass, "getuser", no_login)
    out = io.StringIO()
    chat = ConsoleChat(core, out=out)
    await chat.line("/start")
    assert "Welcome, @" in out.getvalue()


async def test_an_answer_to_an_ask_is_forgotten_after_another_command(core: Core) -> None:
    out = io.StringIO()
    chat = ConsoleChat(core, out=out, name="erin")
    await chat.line("/imagine a lonely tree --seed 1")
    await chat.line("/as frank")
    await chat.line("remix 1")
    await chat.line("/help")  # a command in between cancels the question
    await chat.line("a forest of trees")
    assert "Send /imagine <prompt>" in out.getvalue()  # plain text again, not a remix


async def test_news_for_another_person_waits_until_they_are_the_one_typing(core: Core) -> None:
    out = io.StringIO()
    chat = ConsoleChat(core, out=out, name="alice")
    await chat.line("/imagine a lonely tree --seed 1")
    [post] = re.findall(r"#(\d+) by @alice", out.getvalue())
    await chat.line("/as carol")
    await chat.line(f"like {post}")
    assert await batch_pass(core.sessions, core.settings, datetime(2026, 1, 10, 12, 0, tzinfo=UTC)) == 1
    core.outbox.wake()
    async with asyncio.timeout(10):
        await core.drain()
    assert "🔔" not in out.getvalue()  # carol is typing: alice's news is not shown to her
    await chat.line("/as alice")
    after = out.getvalue().split("You are now alice.", 1)[1]
    assert after.splitlines()[1:3] == ["bot> While you were away (1 message):", f"bot> 🔔 @carol liked #{post}"]
    await chat.line("/as carol")
    await chat.line("/as alice")
    assert out.getvalue().count(f"🔔 @carol liked #{post}") == 1  # told once
