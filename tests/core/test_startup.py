"""`python -m bots` refuses a setting it cannot work with in one line naming it (exit 2, no
traceback), found at start-up rather than at the first image; and it stops without a traceback."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from core.config import ConfigError, Settings, load_settings
from tests.databases import TEST_DATABASE_URL

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw_"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)


def bots(
    tmp_path: Path, *, cwd: Path = ROOT, stdin: str = "/start\n", **settings: str
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG", "LC_ALL"}}
    env.update(
        PYTHONPATH=str(ROOT),
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'app.db'}",
        MEDIA_DIR=str(tmp_path / "data" / "media"),
        IMAGE_BACKEND="local",
    )
    env.update(settings)
    return subprocess.run(
        [sys.executable, "-m", "bots"], cwd=cwd, env=env, input=stdin, capture_output=True, text=True, timeout=60
    )


def assert_refused(done: subprocess.CompletedProcess[str], line: str) -> None:
    assert done.returncode == 2, done.stderr
    assert done.stderr == line + "\n"
    assert done.stdout == ""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- the database -----------------------------------------------------------------------------


def test_an_unreachable_database_port_names_the_setting_and_the_address(tmp_path: Path) -> None:
    port = free_port()
    done = bots(tmp_path, DATABASE_URL=f"postgresql+asyncpg://app:hunter2@127.0.0.1:{port}/app")
    assert_refused(done, f"Invalid setting DATABASE_URL: cannot connect to 127.0.0.1:{port} (connection refused)")


def test_a_sqlite_file_that_is_not_a_database_is_one_line(tmp_path: Path) -> None:
    junk = tmp_path / "notes.txt"
    junk.write_text("not a database, just some notes " * 100)
    done = bots(tmp_path, DATABASE_URL=f"sqlite+aiosqlite:///{junk}")
    assert_refused(done, f"Invalid setting DATABASE_URL: cannot open the SQLite file {junk} (file is not a database)")


def test_a_sqlite_folder_that_cannot_be_made_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("")
    done = bots(tmp_path, DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'afile' / 'app.db'}")
    assert_refused(
        done, f"Invalid setting DATABASE_URL: cannot create the folder {tmp_path / 'afile'} (a file is in the way)"
    )


@pytest.mark.skipif(not TEST_DATABASE_URL, reason="needs TEST_DATABASE_URL (a PostgreSQL server)")
@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"database": "no_such_db_h3"}, 'database "no_such_db_h3" does not exist'),
        ({"username": "no_such_role_h3", "password": "hunter2"}, 'role "no_such_role_h3" does not exist'),
    ],
)
def test_a_missing_postgresql_database_or_role_is_one_line(
    tmp_path: Path, change: dict[str, str], expected: str
) -> None:
    assert TEST_DATABASE_URL
    url = make_url(TEST_DATABASE_URL).set(**change).render_as_string(hide_password=False)
    done = bots(tmp_path, DATABASE_URL=url)
    assert_refused(done, f"Invalid setting DATABASE_URL: {expected}")
    assert "hunter2" not in done.stderr


# --- MEDIA_DIR --------------------------------------------------------------------------------


def test_a_media_dir_that_is_a_file_is_refused_at_start_up(tmp_path: Path) -> None:
    media = tmp_path / "media"
    media.write_text("")
    done = bots(tmp_path, MEDIA_DIR=str(media))
    assert_refused(done, f"Invalid setting MEDIA_DIR: {media} is a file, not a folder")
    assert not (tmp_path / "app.db").exists()  # refused before anything was started


def test_a_media_dir_that_cannot_be_made_is_refused_at_start_up(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("")
    media = tmp_path / "afile" / "media"
    done = bots(tmp_path, MEDIA_DIR=str(media))
    assert_refused(done, f"Invalid setting MEDIA_DIR: cannot write in {media} (Not a directory)")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes in read-only folders")
def test_a_read_only_media_dir_is_refused_at_start_up(tmp_path: Path) -> None:
    media = tmp_path / "data" / "media"
    media.mkdir(parents=True)
    media.chmod(0o500)
    try:
        done = bots(tmp_path, MEDIA_DIR=str(media))
    finally:
        media.chmod(0o700)
    assert_refused(done, f"Invalid setting MEDIA_DIR: cannot write in {media} (Permission denied)")


# --- tokens, URLs and empty values ------------------------------------------------------------


def load(**values: str) -> Settings:
    return load_settings(_env_file=None, **values)


def test_an_empty_value_means_unset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("OPENAI_API_KEY=\nTELEGRAM_BOT_TOKEN=\nGENERATION_COOLDOWN_SECONDS=\nQUIET_HOURS=\n")
    settings = load_settings(_env_file=env_file)
    assert settings.openai_api_key is None and not settings.uses_openai
    assert settings.telegram_bot_token is None
    assert settings.generation_cooldown_seconds is None
    assert settings.quiet_hours == ""  # an empty QUIET_HOURS still means no quiet hours
    monkeypatch.setenv("OPENAI_API_KEY", " ")
    assert load().openai_api_key is None


def test_an_empty_openai_key_in_dotenv_starts_like_no_key(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("OPENAI_API_KEY=\n")
    done = bots(tmp_path, cwd=tmp_path, IMAGE_BACKEND="auto")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert "@" in done.stdout  # the console answered /start


def test_a_well_formed_bot_token_is_accepted() -> None:
    settings = load(telegram_bot_token=TOKEN)
    assert settings.telegram_bot_token is not None
    assert settings.telegram_bot_token.get_secret_value() == TOKEN


@pytest.mark.parametrize("token", ["abc", "42", "42:short", f"{TOKEN} extra", f"bot{TOKEN}"])
def test_a_malformed_bot_token_is_one_line_that_does_not_echo_it(token: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(telegram_bot_token=token)
    message = str(caught.value)
    assert message.startswith("Invalid setting TELEGRAM_BOT_TOKEN: ") and "@BotFather" in message
    assert token not in message and "\n" not in message


@pytest.mark.parametrize("url", ["http://bot.example.com/hook", "bot.example.com/hook", "https://", "ftp://x/y"])
def test_a_webhook_url_must_be_https(url: str) -> None:
    with pytest.raises(ConfigError, match=r"^Invalid setting TELEGRAM_WEBHOOK_URL: .*https://"):
        load(telegram_webhook_url=url)
    assert (
        load(telegram_webhook_url="https://bot.example.com/hook").telegram_webhook_url == "https://bot.example.com/hook"
    )


def test_python_m_bots_refuses_a_malformed_token_in_one_line(tmp_path: Path) -> None:
    done = bots(tmp_path, TELEGRAM_BOT_TOKEN="12345:oops")
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Invalid setting TELEGRAM_BOT_TOKEN: "), done.stderr
    assert "oops" not in done.stderr


# --- stopping ---------------------------------------------------------------------------------


def test_the_console_exits_quickly_without_a_traceback_in_its_log(tmp_path: Path) -> None:
    for _ in range(2):  # the digest job starts with the console; quitting at once used to cancel it
        done = bots(tmp_path, stdin="/start\n")
        assert done.returncode == 0 and done.stderr == "", done.stderr
    log = (tmp_path / "data" / "bots.log").read_text()
    assert "Traceback" not in log and "CancelledError" not in log, log


async def test_stopping_lets_a_running_scheduled_job_finish_instead_of_cancelling_it(
    settings: Settings, database_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from core import scheduler
    from core.app import bootstrap
    from tests.conftest import empty_tables

    started, finished = asyncio.Event(), asyncio.Event()

    async def slow_digest_pass(_core: object) -> None:  # a digest pass that takes a moment, as a real one can
        started.set()
        await asyncio.sleep(0.3)
        finished.set()

    monkeypatch.setattr(scheduler, "digest_tick", slow_digest_pass)
    app = await bootstrap(settings)
    try:
        await app.start(schedule=True)
        await asyncio.wait_for(started.wait(), 10)
    finally:
        await app.aclose()
        await empty_tables(database_url)
    assert finished.is_set()
    assert [r.getMessage() for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR] == []


# --- bin/run ----------------------------------------------------------------------------------


def test_bin_run_reads_the_dotenv_of_the_working_directory(tmp_path: Path) -> None:
    """As the README says: bin/run keeps the caller's working directory for .env (and data/)."""
    repo = tmp_path / "repo"
    (repo / "bin").mkdir(parents=True)
    for script in ("run", "_venv.sh"):
        shutil.copy2(ROOT / "bin" / script, repo / "bin" / script)
    for package in ("bots", "core"):
        (repo / package).symlink_to(ROOT / package)
    (repo / "requirements.txt").write_text("nothing\n")
    python = repo / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    # Marks the requirements as installed, so bin/run installs nothing.
    stamp = hashlib.sha256(b"nothing\n" * 2).hexdigest()[:16]
    (repo / ".venv" / ".installed-requirements").write_text(stamp + "\n")
    caller = tmp_path / "elsewhere"
    caller.mkdir()
    (caller / ".env").write_text("DAILY_QUOTA=lots\n")
    env = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG", "LC_ALL"}}
    env.update(DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'app.db'}", MEDIA_DIR=str(tmp_path / "media"))
    done = subprocess.run(
        [str(repo / "bin" / "run")], cwd=caller, env=env, input="/start\n", capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.startswith("Invalid setting DAILY_QUOTA: ") and done.stderr.count("\n") == 1
