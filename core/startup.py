"""Start-up checks: the database answers and MEDIA_DIR is a writable folder. Each failure is a
ConfigError, one line naming the setting, instead of a driver's traceback found minutes later."""

from __future__ import annotations

import socket
import tempfile
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from core.config import ConfigError
from core.db import create_engine


def check_media_dir(path: Path) -> None:
    """MEDIA_DIR is, or can be made, a folder we can write in."""
    try:
        if path.exists() and not path.is_dir():
            raise ConfigError(f"Invalid setting MEDIA_DIR: {path} is a file, not a folder")
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(f"Invalid setting MEDIA_DIR: cannot write in {path} ({reason})") from None


async def open_database(url: str) -> AsyncEngine:
    """The engine, once one connection has been made with it."""
    try:
        engine = create_engine(url)
    except OSError as exc:  # the SQLite file's folder cannot be made
        reason = "a file is in the way" if isinstance(exc, FileExistsError) else exc.strerror or type(exc).__name__
        raise ConfigError(f"Invalid setting DATABASE_URL: cannot create the folder {exc.filename} ({reason})") from None
    try:
        async with engine.connect():
            pass
    except Exception as exc:
        await engine.dispose()
        raise ConfigError(f"Invalid setting DATABASE_URL: {describe_connect_error(exc, url)}") from None
    return engine


def describe_connect_error(exc: BaseException, url: str) -> str:
    """What went wrong, in one line that never holds the URL's password."""
    parsed = make_url(url)
    where = f"{parsed.host or 'localhost'}:{parsed.port or 5432}"
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        exc = exc.orig
    if isinstance(exc, ConnectionRefusedError):
        message = f"cannot connect to {where} (connection refused)"
    elif isinstance(exc, socket.gaierror):
        message = f"cannot find the host {parsed.host} ({exc.strerror})"
    elif isinstance(exc, TimeoutError):
        message = f"cannot connect to {where} (no answer)"
    elif isinstance(exc, OSError):
        message = f"cannot connect to {where} ({exc.strerror or exc})"
    elif parsed.get_backend_name() == "sqlite":
        message = f"cannot open the SQLite file {parsed.database} ({_first_line(exc)})"
    else:
        message = _first_line(exc)
    if parsed.password:
        message = message.replace(parsed.password, "***")
    return message


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
