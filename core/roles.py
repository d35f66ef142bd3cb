"""What one process of a deployment does: `python -m bots serve --roles ...`.

- messengers: receive updates (Telegram polling or webhook, the console) and answer them;
- workers: run generation jobs (core.gen.queue);
- scheduler: the periodic ticks, in the one process that leads (core.scheduler);
- senders: send the outbox, one process per platform at a time (core.outbox).

SQLite allows one process, with every role: a second process would fight the first for the file's
single writer, and the locks that keep work from running twice are PostgreSQL's.
"""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from sqlalchemy.engine import make_url

from core.config import ConfigError
from core.db import is_sqlite

ROLES = ("messengers", "workers", "scheduler", "senders")
ALL = frozenset(ROLES)
SQLITE_ONE_PROCESS = (
    "SQLite allows one process with all roles (python -m bots); "
    "to split roles over several processes, set DATABASE_URL to a PostgreSQL database."
)


def parse_roles(text: str | None) -> frozenset[str]:
    if text is None or not text.strip():
        return ALL
    roles = {part.strip().lower() for part in text.split(",") if part.strip()}
    unknown = sorted(roles - ALL)
    if unknown:
        raise ConfigError(f"Unknown role {', '.join(unknown)}; the roles are {', '.join(ROLES)}.")
    return frozenset(roles)


def describe(roles: frozenset[str]) -> str:
    return ",".join(role for role in ROLES if role in roles)


def check_roles(database_url: str, roles: frozenset[str]) -> None:
    if is_sqlite(database_url) and roles != ALL:
        raise ConfigError(f"Cannot run only {describe(roles)} on SQLite. {SQLITE_ONE_PROCESS}")


@dataclass
class ProcessLock:
    """An exclusive lock on a file beside the SQLite database, held while the process lives (the
    kernel drops it when the process dies, however it dies)."""

    file: IO[str] | None = None

    def release(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None


def claim_sqlite(database_url: str) -> ProcessLock:
    """Refuse to start a second process on one SQLite database; nothing to do on PostgreSQL."""
    if not is_sqlite(database_url):
        return ProcessLock()
    database = make_url(database_url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return ProcessLock()
    path = Path(f"{database}.process-lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    file = path.open("a+", encoding="utf-8")
    try:
        fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        file.seek(0)
        holder = file.read().strip() or "another process"
        file.close()
        raise ConfigError(f"Another process (pid {holder}) already runs on {database}. {SQLITE_ONE_PROCESS}") from None
    file.seek(0)
    file.truncate()
    file.write(str(os.getpid()))
    file.flush()
    return ProcessLock(file)
