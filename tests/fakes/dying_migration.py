"""`python -m tests.fakes.dying_migration URL N`: run the start-up migrations and SIGKILL this process
right after its N-th SQL statement, as a power cut or an OOM kill would (N = 0: never; then the
statements are printed as JSON, so a test can choose where to kill)."""

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


def main(url: str, kill_after: int) -> None:
    statements: list[str] = []

    @event.listens_for(Engine, "after_cursor_execute")
    def _count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(" ".join(statement.split()))
        if len(statements) == kill_after:
            os.kill(os.getpid(), signal.SIGKILL)

    asyncio.run(upgrade(create_engine(url)))
    print(json.dumps(statements))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
