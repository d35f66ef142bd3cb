"""Commands that only read (`reads_only` in their declaration) run on PostgreSQL outside a transaction.

Each statement is then its own transaction, and the BEGIN and COMMIT round trips, two of the five a /top
paid, are gone. That is only safe while nothing writes: a write in autocommit would be committed on its
own, and two of them would no longer be atomic. So a session in this mode refuses to flush anything, and
the person's own bookkeeping (first contact, the last-seen touch, an ended ban) sends the command the
transactional way instead (core.app). SQLite keeps its transactions: BEGIN and COMMIT cost it no round trip.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

_KEY = "reads_only"  # in Session.info: the command a session reads for
AUTOCOMMIT = {"isolation_level": "AUTOCOMMIT"}


class WriteInReadOnlyCommand(RuntimeError):
    """A command declared reads_only tried to write: a bug in its declaration or its handler."""


async def begin(session: AsyncSession, command: str) -> None:
    """Put a new session (before its first statement) in autocommit, refusing writes."""
    await session.connection(execution_options=AUTOCOMMIT)
    session.info[_KEY] = command


@event.listens_for(Session, "before_flush")
def _refuse_writes(session: Session, _context: Any, _instances: Any) -> None:
    command = session.info.get(_KEY)
    if command is not None and (session.new or session.dirty or session.deleted):
        raise WriteInReadOnlyCommand(f"/{command} is declared reads_only but writes")
