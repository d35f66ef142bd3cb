"""The command registry and what a command handler is given."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from core.actor import Actor
from core.models import Person
from core.params import Param, ParamType, Values, check_options, parse_text, synopsis, validate
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

    @property
    def viewer_id(self) -> int | None:
        """Who alone sees the replies (core.cards.card): the person in their own chat; None in a group or
        a channel, where a press edits a message everyone there sees."""
        return self.person.id if self.actor.private else None


# Called as handler(ctx, **values): one keyword argument per declared parameter, already typed.
Handler = Callable[..., Awaitable[list[Reply]]]
SUMMARY_MAX = 100  # the tightest limit of the platforms we serve (Discord command descriptions)


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    summary: str  # one line for /help and the platforms' command menus
    handler: Handler
    params: tuple[Param, ...] = ()
    examples: tuple[str, ...] = ()  # whole lines; when given, usage errors show them
    hidden: bool = False  # reachable by buttons, not listed in /help
    # Only reads (besides the person's own row, which the command layer looks after): on PostgreSQL it runs
    # without a transaction, two round trips fewer. A write in its handler is refused (core.readonly).
    reads_only: bool = False

    @property
    def synopsis(self) -> str:
        """What follows the name: `<post> [<prompt>] [--ar 1:1|16:9] ...`."""
        return synopsis(self.params)

    @property
    def usage(self) -> str:
        return f"/{self.name} {self.synopsis}".rstrip()

    @property
    def usage_line(self) -> str:
        """`Usage: ...`, the end of every complaint about how the command was written."""
        if not self.examples:
            return f"Usage: {self.usage}"
        *first, last = self.examples
        return f"Usage: {', '.join(first)}{',' if len(first) > 1 else ''}{' or ' if first else ''}{last}"

    @property
    def summary_with_args(self) -> str:
        """The summary, then what the command takes: one line for a platform's command menu."""
        return f"{self.summary} — {self.synopsis}" if self.synopsis else self.summary

    def parse(self, text: str, attached: Values | None = None) -> Values:
        return parse_text(self.params, text, self.usage_line, attached)

    @property
    def image_param(self) -> str | None:
        """The parameter an attached picture goes to, if the command takes one."""
        return next((p.name for p in self.params if p.type is ParamType.IMAGE), None)

    def check(self, given: Mapping[str, object]) -> Values:
        return check_options(self.params, given, self.usage_line)


COMMANDS: dict[str, Command] = {}


def command(
    name: str,
    summary: str,
    *,
    params: Iterable[Param] = (),
    examples: Iterable[str] = (),
    hidden: bool = False,
    reads_only: bool = False,
) -> Callable[[Handler], Handler]:
    declared = tuple(params)
    validate(declared)
    if not summary or len(summary) > SUMMARY_MAX:
        raise ValueError(f"/{name}: a summary of 1 to {SUMMARY_MAX} characters")

    def register(handler: Handler) -> Handler:
        _check_signature(name, handler, declared)
        COMMANDS[name] = Command(name, summary, handler, declared, tuple(examples), hidden, reads_only)
        return handler

    return register


def _check_signature(name: str, handler: Callable[..., Any], params: tuple[Param, ...]) -> None:
    """The handler takes exactly the declared parameters, so a declaration cannot drift from its code."""
    taken = list(inspect.signature(handler).parameters)[1:]
    if taken != [p.name for p in params]:
        raise TypeError(f"/{name}: the handler takes {taken}, the declaration {[p.name for p in params]}")


def parse_args(name: str, text: str) -> Values:
    """The typed values of `/name text`; a UserError (naming the parameter, then the usage) when malformed."""
    return COMMANDS[name].parse(text)


def listed() -> list[Command]:
    return [c for c in COMMANDS.values() if not c.hidden]
