"""`python -m tests.fakes.dying_migration`: a process that runs the start-up migrations and is
SIGKILLed right after their N-th SQL statement, as a power cut or an OOM kill would.

It reads requests `URL N` from stdin, one per line, and forks one child per request: the child
migrates URL and kills itself after statement N (N = 0: never). For each request one JSON line comes
back: the child's return code as subprocess reports it (-9 for SIGKILL), and, when N = 0, the
statements it ran, so a test can choose where to kill. Forking from one process that has already
imported SQLAlchemy and Alembic costs milliseconds where a new interpreter per kill costs a second;
the child is still a real process killed mid-transaction."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

from core.db import create_engine
from core.migrate import upgrade


def _migrate_and_die(url: str, kill_after: int, out: int) -> None:
    """In the child: migrate, SIGKILL after statement `kill_after`, else write the statements to `out`."""
    statements: list[str] = []

    @event.listens_for(Engine, "after_cursor_execute")
    def _count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(" ".join(statement.split()))
        if len(statements) == kill_after:
            os.kill(os.getpid(), signal.SIGKILL)

    asyncio.run(upgrade(create_engine(url)))
    with os.fdopen(out, "w") as pipe:
        json.dump(statements, pipe)


def _run_one(url: str, kill_after: int) -> dict[str, Any]:
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(read_end)
        code = 0
        try:
            _migrate_and_die(url, kill_after, write_end)
        except BaseException as error:  # reported to the test: an exception must not escape a fork
            print(f"migration failed: {error!r}", file=sys.stderr, flush=True)
            code = 1
        os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        written = pipe.read()
    _, status = os.waitpid(pid, 0)
    returncode = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
    result: dict[str, Any] = {"returncode": returncode}
    if written:
        result["statements"] = json.loads(written)
    return result


def main() -> None:
    for line in sys.stdin:
        url, kill_after = line.rsplit(maxsplit=1)
        print(json.dumps(_run_one(url, int(kill_after))), flush=True)


if __name__ == "__main__":
    main()
