"""Settings, read from the environment or a `.env` file (pydantic-settings)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import time
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from core.admins import Admins


def is_known_zone(name: str) -> bool:
    """Whether zoneinfo can load this name. A region alone (`America`) is a folder and a very long
    name no file can have: zoneinfo lets those through as OSError, not as its "not found"."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def parse_clock(value: str) -> time:
    """ "HH:MM" (24-hour) -> time; ValueError with a plain message otherwise."""
    hours, sep, minutes = value.strip().partition(":")
    if not (sep and hours.isdigit() and minutes.isdigit() and len(minutes) == 2):
        raise ValueError(f"{value!r} is not a time; use HH:MM, for example 09:00")
    if int(hours) > 23 or int(minutes) > 59:
        raise ValueError(f"{value!r} is not a time of day")
    return time(int(hours), int(minutes))


# What @BotFather hands out: the bot's numeric id, a colon, and about 35 URL-safe characters.
TELEGRAM_TOKEN = re.compile(r"\d+:[A-Za-z0-9_-]{30,}")


class ConfigError(Exception):
    """A setting has an invalid value; the message is one line naming it."""


# The longest any duration setting may be: ten years, far beyond any sensible value and far inside what a
# timedelta holds (a larger one overflowed in the first job that used it, not at start-up).
_YEARS_S = 10 * 365 * 86400


class Settings(BaseSettings):
    # No inf or nan: every number here becomes a count, a sleep or a timedelta, which they would break.
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore", allow_inf_nan=False)

    database_url: str = "sqlite+aiosqlite:///data/app.db"
    media_dir: Path = Path("data/media")
    image_backend: Literal["auto", "local", "openai"] = "auto"
    admins: Annotated[tuple[str, ...], NoDecode] = ()
    prompt_max_chars: int = Field(default=1000, ge=1, le=32000)
    daily_quota: int = Field(default=50, ge=0)
    # Seconds between one person's requests; unset means 10 for a paid remote backend, 0 for the offline one.
    generation_cooldown_seconds: float | None = Field(default=None, ge=0, le=_YEARS_S)
    default_timezone: str = "UTC"
    log_level: str = "INFO"

    # Digests, notifications, gallery "best of the day"
    digest_time: str = "09:00"  # default local delivery time, HH:MM
    digest_size: int = Field(default=6, ge=1, le=10)
    notify_interval_minutes: float = Field(default=15.0, gt=0, le=_YEARS_S / 60)
    quiet_hours: str = "22:00-08:00"  # local time; empty for none
    gallery_best_of_time: str = "20:00"  # in DEFAULT_TIMEZONE
    # Like counts in galleries, at most this often.
    gallery_refresh_seconds: float = Field(default=60.0, gt=0, le=_YEARS_S)
    scheduler_tick_seconds: float = Field(default=60.0, gt=0, le=_YEARS_S)
    heartbeat_seconds: float = Field(default=5.0, gt=0, le=_YEARS_S)  # each process's row in `python -m bots status`

    # Safety and operations
    report_hide_threshold: int = Field(default=3, ge=1)  # different people's reports that hide a post
    # A deleted post is kept this long for /restore.
    deleted_retention_days: int = Field(default=30, ge=0, le=_YEARS_S // 86400)
    # A file in MEDIA_DIR that no row names is removed once it is this old (core.media_sweep). Its writer
    # commits the row seconds after the file: an hour is the least that is safe with any lease or timeout.
    media_orphan_age_hours: float = Field(default=24.0, ge=1, le=_YEARS_S / 3600)
    rate_limit_burst: int = Field(default=20, ge=1)  # commands a person may send at once
    rate_limit_per_minute: float = Field(default=30.0, gt=0)  # and then this many a minute
    # On top of that limit, comments one person may write a minute (counted in the database, so it
    # holds across processes and restarts); 0 leaves comments to the general limit alone.
    comments_per_minute: int = Field(default=5, ge=0)

    # Image generation
    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None
    openai_image_model: str = "gpt-image-2"
    openai_image_quality: Literal["low", "medium", "high", "auto"] = "auto"
    openai_output_format: Literal["png", "jpeg", "webp"] = "png"
    generation_timeout_seconds: float = Field(default=180.0, gt=0, le=_YEARS_S)
    generation_concurrency: int = Field(default=4, ge=1, le=256)
    generation_per_person: int = Field(default=2, ge=1)
    generation_max_attempts: int = Field(default=5, ge=1)
    # A running job's lease: renewed every third of it; a job not renewed this long is taken over.
    generation_lease_seconds: float = Field(default=30.0, ge=1, le=_YEARS_S)
    blocklist: Annotated[tuple[str, ...], NoDecode] = ()
    # Prompt moderation with OpenAI's moderations endpoint (only when an API key is set).
    openai_moderation: bool = True
    openai_moderation_model: str = "omni-moderation-latest"
    moderation_timeout_seconds: float = Field(default=10.0, gt=0, le=_YEARS_S)
    # People's own pictures (/edit, a photo with /imagine): the largest file taken, in megabytes.
    upload_max_mb: float = Field(default=10.0, gt=0, le=50)
    # The key that signs every image made here (core.provenance); generated into data/ when unset.
    provenance_key: SecretStr | None = None
    # Circuit breaker around the image service: open after N retryable failures in a row, for a cool-down.
    breaker_failure_threshold: int = Field(default=5, ge=1)
    breaker_cooldown_seconds: float = Field(default=60.0, gt=0, le=_YEARS_S)

    # Messengers
    telegram_bot_token: SecretStr | None = None
    telegram_api_base_url: str | None = None  # a self-hosted Bot API server, e.g. http://127.0.0.1:8081
    telegram_gallery_chat_id: str | None = None  # a channel (or group) where every public post is published
    telegram_webhook_url: str | None = None  # the public HTTPS URL; unset means long polling
    telegram_webhook_secret: SecretStr | None = None  # generated at start-up when unset
    telegram_webhook_listen: str = "0.0.0.0"
    telegram_webhook_port: int = Field(default=8443, ge=0, le=65535)
    # Telegram allows about 30 messages a second overall; stay below it.
    telegram_messages_per_second: float = Field(default=25.0, gt=0, le=30)
    discord_bot_token: SecretStr | None = None

    # Discord
    discord_api_base_url: str | None = None  # a test or proxy server, e.g. http://127.0.0.1:8082/api/v10
    discord_guild_id: int | None = None  # commands are registered in this guild (at once) instead of globally
    discord_gallery_channel_id: int | None = None  # a channel where every public post is published
    # Discord allows 50 requests a second overall and far fewer direct messages; stay below both.
    discord_dm_per_second: float = Field(default=5.0, gt=0, le=50)
    # Sharding: several processes split the gateway shards, e.g. DISCORD_SHARD_COUNT=4 and
    # DISCORD_SHARD_IDS=0,1 in one process, 2,3 in another. Unset: one process, Discord's shard count.
    discord_shard_count: int | None = Field(default=None, ge=1)
    discord_shard_ids: Annotated[tuple[int, ...], NoDecode] = ()

    @field_validator("admins", "blocklist", "discord_shard_ids", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("admins")
    @classmethod
    def _safe_admins(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        Admins.parse(value)  # an entry that names nobody for sure stops start-up
        return value

    @field_validator(
        "openai_api_key",
        "openai_base_url",
        "provenance_key",
        "generation_cooldown_seconds",
        "telegram_bot_token",
        "telegram_api_base_url",
        "telegram_gallery_chat_id",
        "telegram_webhook_url",
        "telegram_webhook_secret",
        "discord_bot_token",
        "discord_api_base_url",
        "discord_guild_id",
        "discord_gallery_channel_id",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # `OPENAI_API_KEY=` in a .env means "no key", not an empty key. Not env_ignore_empty for all
        # settings: an empty QUIET_HOURS means "none", unlike its default.
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("telegram_bot_token")
    @classmethod
    def _token_shape(cls, value: SecretStr | None) -> SecretStr | None:
        # Checked here, so a pasted half token is one line at start-up, not a 401 from Telegram later.
        if value is not None and not TELEGRAM_TOKEN.fullmatch(value.get_secret_value()):
            raise ValueError(
                "not a bot token; @BotFather gives one like 123456789:AAF1x..._-4 (digits, colon, 35 characters)"
            )
        return value

    @field_validator("telegram_webhook_url")
    @classmethod
    def _https_webhook(cls, value: str | None) -> str | None:
        if value is not None:
            parts = urlsplit(value.strip())
            if parts.scheme != "https" or not parts.hostname:
                raise ValueError(
                    "Telegram sends updates only to an https:// URL, e.g. https://bot.example.com/telegram"
                )
            return value.strip()
        return value

    @field_validator("default_timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        if not is_known_zone(value):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name such as Europe/Berlin)")
        return value

    @field_validator("database_url")
    @classmethod
    def _async_database_url(cls, value: str) -> str:
        # Checked here so a wrong URL is one line at start-up, not a traceback from the engine.
        # The messages never echo the URL: it may hold a password.
        drivers = {"sqlite": "aiosqlite", "postgresql": "asyncpg"}
        try:
            url = make_url(value)
        except ArgumentError:
            raise ValueError("not a database URL (for example sqlite+aiosqlite:///data/app.db)") from None
        backend = url.get_backend_name()
        if backend not in drivers:
            raise ValueError("use SQLite or PostgreSQL (sqlite+aiosqlite:///... or postgresql+asyncpg://...)")
        if url.get_driver_name() != drivers[backend]:
            raise ValueError(f"use the async driver: {backend}+{drivers[backend]}://...")
        return value

    @field_validator("digest_time", "gallery_best_of_time")
    @classmethod
    def _clock_time(cls, value: str) -> str:
        parse_clock(value)
        return value

    @field_validator("quiet_hours")
    @classmethod
    def _quiet_hours(cls, value: str) -> str:
        if value.strip():
            start, sep, end = value.partition("-")
            if not sep:
                raise ValueError("use HH:MM-HH:MM, for example 22:00-08:00, or leave it empty")
            parse_clock(start.strip())
            parse_clock(end.strip())
        return value.strip()

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        if value.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("use DEBUG, INFO, WARNING or ERROR")
        return value.upper()

    @field_validator("discord_shard_ids")
    @classmethod
    def _shards_within_count(cls, value: tuple[int, ...], info: ValidationInfo) -> tuple[int, ...]:
        count = info.data.get("discord_shard_count")
        if value and count is None:
            raise ValueError("needs DISCORD_SHARD_COUNT, the number of shards of the whole deployment")
        outside = [i for i in value if count is not None and not 0 <= i < count]
        if outside:
            raise ValueError(f"shard {outside[0]} is not between 0 and DISCORD_SHARD_COUNT - 1")
        twice = sorted({i for i in value if value.count(i) > 1})
        if twice:
            raise ValueError(f"shard {twice[0]} is listed twice")
        return value

    @property
    def discord_shards(self) -> DiscordShards:
        """What a discord.py client takes: AutoShardedClient(**settings.discord_shards.client_kwargs())."""
        return DiscordShards(self.discord_shard_count, self.discord_shard_ids or None)

    @property
    def cooldown_seconds(self) -> float:
        if self.generation_cooldown_seconds is not None:
            return self.generation_cooldown_seconds
        return 10.0 if self.uses_openai else 0.0

    @property
    def uses_openai(self) -> bool:
        if self.image_backend == "auto":
            return self.openai_api_key is not None
        return self.image_backend == "openai"

    @property
    def galleries(self) -> list[tuple[str, str]]:
        """(platform, chat id) of each gallery with a bot to send to it. Every process knows them,
        whatever its roles: a post finished by a workers-only process is published all the same
        (the senders deliver it)."""
        found: list[tuple[str, str]] = []
        if self.telegram_bot_token is not None and self.telegram_gallery_chat_id:
            found.append(("telegram", self.telegram_gallery_chat_id))
        if self.discord_bot_token is not None and self.discord_gallery_channel_id:
            found.append(("discord", str(self.discord_gallery_channel_id)))
        return found

    @property
    def admin_list(self) -> Admins:
        return Admins.parse(self.admins)

    def is_admin(self, handle: str, platform_id: str) -> bool:
        """By `platform:user_id` anywhere; by handle alone only in the console chat (see core/admins.py)."""
        return self.admin_list.is_admin(platform_id, handle.lower())


@dataclass(frozen=True, slots=True)
class DiscordShards:
    """This process's share of the Discord gateway (DISCORD_SHARD_COUNT / DISCORD_SHARD_IDS)."""

    count: int | None  # None: let Discord say how many
    ids: tuple[int, ...] | None  # None: every shard (of `count`)

    def client_kwargs(self) -> dict[str, object]:
        kwargs: dict[str, object] = {}
        if self.count is not None:
            kwargs["shard_count"] = self.count
        if self.ids is not None:
            kwargs["shard_ids"] = list(self.ids)
        return kwargs


def load_settings(**overrides: object) -> Settings:
    """Build settings, turning a validation failure into one line naming the setting."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        error = exc.errors()[0]
        name = str(error["loc"][0]).upper() if error["loc"] else "settings"
        raise ConfigError(f"Invalid setting {name}: {error['msg']}") from None
