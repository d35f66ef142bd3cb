"""The command registry and what a command handler is given."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from core.actor import Actor
from core.models import Person
from core.replies import Reply

if TYPE_CHECKING:
    from core.app import Core


@dataclass(slots=True)
class Context:
    core: Core
    session: AsyncSession
    actor: Actor
    person: Person
    via_button: bool  # pressed a button rather than typed the command
    is_admin: bool
    request_id: str | None = None  # the platform's id for this message or press, for idempotency
    # Side effects outside the database (deleting files) that must wait until the commit succeeds.
    after_commit: list[Callable[[], Awaitable[None]]] = field(default_factory=list)


Handler = Callable[[Context, str], Awaitable[list[Reply]]]


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    usage: str  # e.g. "/follow <handle>"
    summary: str  # one line for /help
    handler: Handler
    hidden: bool = False  # reachable by buttons, not listed in /help


COMMANDS: dict[str, Command] = {}


def command(name: str, usage: str, summary: str, *, hidden: bool = False) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        COMMANDS[name] = Command(name, usage, summary, handler, hidden)
        return handler

    return register


def listed() -> list[Command]:
    return [c for c in COMMANDS.values() if not c.hidden]
