"""What the core answers: plain data that each platform adapter renders in its own way."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

MAX_ACTION_BYTES = 64  # Telegram callback data; a Discord custom_id allows 100 characters


@dataclass(frozen=True, slots=True)
class Button:
    label: str
    action: str  # a compact command line such as "like 12"; see core.actions

    def __post_init__(self) -> None:
        if len(self.action.encode()) > MAX_ACTION_BYTES:
            raise ValueError(f"action id over {MAX_ACTION_BYTES} bytes: {self.action!r}")


@dataclass(frozen=True, slots=True)
class Ask:
    """Ask the person for text; their answer is run as `command` with `prefix` before it."""

    question: str
    command: str
    prefix: str = ""
    placeholder: str = ""


@dataclass(frozen=True, slots=True)
class Image:
    path: Path
    caption: str = ""


@dataclass(frozen=True, slots=True)
class Reply:
    """One message. `notice` is a short acknowledgement (a toast where the platform has them);
    `edit` means: replace the message whose button was pressed with this one; `error` marks a
    refusal, a mistake in what was written or our own failure, which an adapter may show its own way
    (only to the person, on Discord)."""

    text: str = ""
    image: Image | None = None
    buttons: tuple[tuple[Button, ...], ...] = field(default_factory=tuple)
    ask: Ask | None = None
    notice: bool = False
    edit: bool = False
    post_id: int | None = None  # the post this message shows, if any
    job_id: int | None = None  # a generation in progress: the adapter follows it and edits this message
    error: bool = False
