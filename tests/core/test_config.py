"""Settings: defaults, the environment, and one clear line for a bad value (also from `python -m bots`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.config import ConfigError, Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No setting may leak in from the developer's shell."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
        monkeypatch.delenv(name, raising=False)


def load(**overrides: object) -> Settings:
    return load_settings(_env_file=None, **overrides)


def test_defaults() -> None:
    settings = load()
    assert settings.database_url == "sqlite+aiosqlite:///data/app.db"
    assert settings.media_dir == Path("data/media")
    assert settings.image_backend == "auto"
    assert settings.admins == ()
    assert settings.prompt_max_chars == 1000
    assert settings.daily_quota == 50
    assert settings.default_timezone == "UTC"
    assert settings.log_level == "INFO"
    assert settings.openai_api_key is None
    assert settings.telegram_bot_token is None and settings.discord_bot_token is None
    assert not settings.uses_openai


def test_values_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAILY_QUOTA", "7")
    monkeypatch.setenv("DEFAULT_TIMEZONE", "Europe/Berlin")
    monkeypatch.setenv("LOG_LEVEL", "debug")
    monkeypatch.setenv("MEDIA_DIR", "/srv/media")
    settings = load()
    assert settings.daily_quota == 7
    assert settings.default_timezone == "Europe/Berlin"
    assert settings.log_level == "DEBUG"
    assert settings.media_dir == Path("/srv/media")


def test_a_dotenv_file_is_read_and_the_environment_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("DAILY_QUOTA=3\nPROMPT_MAX_CHARS=99\n")
    monkeypatch.setenv("DAILY_QUOTA", "4")
    settings = load_settings(_env_file=env_file)
    assert settings.daily_quota == 4 and settings.prompt_max_chars == 99


def test_auto_backend_uses_openai_only_with_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGE_BACKEND", "auto")
    assert not load().uses_openai
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-real")
    with_key = load()
    assert with_key.uses_openai
    assert with_key.openai_api_key is not None and "sk-test" not in repr(with_key)  # a secret stays hidden
    monkeypatch.setenv("IMAGE_BACKEND", "local")
    assert not load().uses_openai


def test_the_local_backend_is_built_without_a_key() -> None:
    from core.app import make_backend
    from core.gen.local import LocalBackend

    assert isinstance(make_backend(load(image_backend="auto")), LocalBackend)
    assert isinstance(make_backend(load(image_backend="local", openai_api_key="sk-x")), LocalBackend)


def test_admins_are_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADMINS", " alice, @Bob ,telegram:42,, ")
    settings = load()
    assert settings.admins == ("alice", "@Bob", "telegram:42")
    assert settings.is_admin("alice", "console:alice") and settings.is_admin("BOB", "console:bob")
    assert settings.is_admin("someone", "telegram:42")
    assert not settings.is_admin("carol", "discord:42")
    monkeypatch.setenv("ADMINS", "")
    assert load().admins == ()


def test_a_handle_alone_makes_an_admin_only_in_the_console_chat() -> None:
    settings = load(admins="boss,carol=telegram:7")
    assert settings.is_admin("boss", "console:boss")
    assert not settings.is_admin("boss", "telegram:12345")  # anyone can be called Boss on Telegram
    assert settings.is_admin("carol", "telegram:7") and settings.is_admin("carol2", "telegram:7")
    assert not settings.is_admin("carol", "telegram:8")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("telgram:42", "Invalid setting ADMINS: Value error, 'telgram:42': unknown platform 'telgram'"),
        ("telegram:@boss", "Invalid setting ADMINS: Value error, 'telegram:@boss': a telegram id is a number"),
        ("bo ss", "Invalid setting ADMINS: Value error, 'bo ss' is not a handle"),
        ("boss=telegram:1,boss", "Invalid setting ADMINS: Value error, 'boss': @boss is named twice"),
        ("boss=boss", "Invalid setting ADMINS: Value error, 'boss': unknown platform 'boss'"),
    ],
)
def test_an_admin_entry_that_names_nobody_for_sure_stops_start_up(value: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(admins=value)
    assert str(caught.value).startswith(expected), caught.value
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("DAILY_QUOTA", "abc", "valid integer"),
        ("DAILY_QUOTA", "-1", "greater than or equal to 0"),
        ("DEFAULT_TIMEZONE", "Mars/Base", "Mars/Base"),
        ("DEFAULT_TIMEZONE", "America", "America"),  # a folder of zones: IsADirectoryError inside zoneinfo
        ("PROMPT_MAX_CHARS", "0", "greater than or equal to 1"),
        ("IMAGE_BACKEND", "magic", "'auto', 'local' or 'openai'"),
        ("LOG_LEVEL", "loud", "DEBUG, INFO, WARNING or ERROR"),
        ("GENERATION_COOLDOWN_SECONDS", "soon", "valid number"),
        # inf, nan and durations no timedelta holds passed start-up and broke the first job that used them
        ("MEDIA_ORPHAN_AGE_HOURS", "inf", "finite number"),
        ("MEDIA_ORPHAN_AGE_HOURS", "1e12", "less than or equal to 87600"),
        ("RATE_LIMIT_PER_MINUTE", "nan", "finite number"),
        ("DELETED_RETENTION_DAYS", "99999999999999999999", "less than or equal to 3650"),
        ("GENERATION_LEASE_SECONDS", "1e300", "less than or equal to"),
        ("DATABASE_URL", "nonsense", "database URL"),
        ("DATABASE_URL", "sqlite:///data/app.db", "sqlite+aiosqlite"),
        ("DATABASE_URL", "mysql+aiomysql://u@h/db", "SQLite or PostgreSQL"),
    ],
)
def test_an_invalid_value_gives_one_line_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load()
    message = str(caught.value)
    assert message.startswith(f"Invalid setting {name}: ")
    assert expected in message
    assert "\n" not in message


def test_a_database_password_never_appears_in_the_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "mysql://user:hunter2@db/app")
    with pytest.raises(ConfigError) as caught:
        load()
    assert "hunter2" not in str(caught.value)


def bots_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A clean environment: no tokens or keys from the developer's shell, a throwaway database."""
    env = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG", "LC_ALL", "SYSTEMROOT"}}
    env.update(
        PYTHONPATH=str(ROOT),
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'app.db'}",
        MEDIA_DIR=str(tmp_path / "media"),
        IMAGE_BACKEND="local",
    )
    env.update(extra)
    return env


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DAILY_QUOTA", "abc"),
        ("DEFAULT_TIMEZONE", "Mars/Base"),
        ("DATABASE_URL", "nonsense"),
    ],
)
def test_python_m_bots_with_a_bad_setting_prints_that_one_line_and_exits(tmp_path: Path, name: str, value: str) -> None:
    env = bots_env(tmp_path, **{name: value})
    expected = ""
    try:
        load_settings(_env_file=None, **{name.lower(): value})
    except ConfigError as exc:
        expected = str(exc)
    assert expected.startswith(f"Invalid setting {name}: ")
    done = subprocess.run(
        [sys.executable, "-m", "bots"],
        cwd=ROOT,
        env=env,
        input="/start\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert done.stderr == expected + "\n"
    assert done.stdout == ""
    assert not (tmp_path / "app.db").exists()  # nothing was started


def test_python_m_bots_refuses_the_openai_backend_without_a_key(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bots"],
        cwd=ROOT,
        env=bots_env(tmp_path, IMAGE_BACKEND="openai"),
        input="/start\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Invalid setting OPENAI_API_KEY"), done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_discord_settings_default_to_five_dms_a_second_and_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    defaults = load()
    assert defaults.discord_dm_per_second == 5.0 and defaults.discord_api_base_url is None
    monkeypatch.setenv("DISCORD_DM_PER_SECOND", "2")
    monkeypatch.setenv("DISCORD_GALLERY_CHANNEL_ID", "1234")
    monkeypatch.setenv("DISCORD_GUILD_ID", "5678")
    settings = load()
    assert (settings.discord_dm_per_second, settings.discord_gallery_channel_id, settings.discord_guild_id) == (
        2.0,
        1234,
        5678,
    )
    monkeypatch.setenv("DISCORD_DM_PER_SECOND", "0")
    with pytest.raises(ConfigError, match="Invalid setting DISCORD_DM_PER_SECOND"):
        load()


def test_discord_shards_split_between_processes() -> None:
    from core.config import load_settings

    split = load_settings(_env_file=None, discord_shard_count="4", discord_shard_ids="2, 3")
    assert split.discord_shards.client_kwargs() == {"shard_count": 4, "shard_ids": [2, 3]}
    assert load_settings(_env_file=None).discord_shards.client_kwargs() == {}


def test_discord_shard_ids_outside_the_count_are_one_line() -> None:
    import pytest

    from core.config import ConfigError, load_settings

    with pytest.raises(ConfigError) as refused:
        load_settings(_env_file=None, discord_shard_count="2", discord_shard_ids="0,2")
    assert str(refused.value) == (
        "Invalid setting DISCORD_SHARD_IDS: Value error, shard 2 is not between 0 and DISCORD_SHARD_COUNT - 1"
    )


def test_discord_shard_ids_listed_twice_or_without_a_count_are_one_line() -> None:
    import pytest

    from core.config import ConfigError, load_settings

    with pytest.raises(ConfigError) as twice:
        load_settings(_env_file=None, discord_shard_count="4", discord_shard_ids="1,3,1")
    assert str(twice.value) == "Invalid setting DISCORD_SHARD_IDS: Value error, shard 1 is listed twice"
    with pytest.raises(ConfigError) as alone:
        load_settings(_env_file=None, discord_shard_ids="0")
    assert str(alone.value) == (
        "Invalid setting DISCORD_SHARD_IDS: Value error, needs DISCORD_SHARD_COUNT, "
        "the number of shards of the whole deployment"
    )
    with pytest.raises(ConfigError, match=r"^Invalid setting DISCORD_SHARD_IDS: Input should be a valid integer"):
        load_settings(_env_file=None, discord_shard_count="2", discord_shard_ids="zero")
