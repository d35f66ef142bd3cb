"""The port through which the core sends on its own (progress, digests, notifications, gallery
posts). Each platform adapter implements `Messenger` and registers it with the core."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from core.replies import Reply


@dataclass(frozen=True, slots=True)
class MessageRef:
    platform: str
    chat_id: str
    message_id: str
    # The platform's ids of the picture the message shows, as it stored it (Telegram's file_unique_id
    # of each photo size): recorded against the post for /verify (core.sent_files). Not part of `encode`.
    files: tuple[str, ...] = field(default=(), compare=False)

    def encode(self) -> str:
        return f"{self.platform}|{self.chat_id}|{self.message_id}"

    @classmethod
    def decode(cls, value: str) -> MessageRef:
        platform, chat_id, message_id = value.split("|", 2)
        return cls(platform, chat_id, message_id)


class DeliveryError(Exception):
    """A send failed; subclasses say what the caller should do about it."""


class Unreachable(DeliveryError):
    """The person blocked the bot or the chat is gone: stop sending until they write again."""


class RetryLater(DeliveryError):
    """The platform asked us to slow down; the send did not happen."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"retry after {retry_after} s")
        self.retry_after = retry_after


class DeliveryUncertain(DeliveryError):
    """The request went out but no answer came back (a read timeout): it may have been delivered,
    so it must not be repeated where a duplicate would be visible."""


class MessageGone(DeliveryError):
    """The message to edit was deleted, or is too old to edit: nothing was changed."""


class CalledOff(DeliveryError):
    """The send never left this process: `on_wire` said the message is no longer ours to send."""


# Called by a messenger right before a request leaves the process, after every wait in its own rate
# limiter; False calls the send off (CalledOff). Called again for a second request of the same send.
OnWire = Callable[[], Awaitable[bool]]


class Messenger(Protocol):
    """A messenger that waits in a rate limiter of its own sets `calls_on_wire = True` and takes an
    `on_wire` keyword in send and edit, so the outbox knows when a message may have gone out."""

    platform: str

    async def send(self, chat_id: str, reply: Reply) -> MessageRef:
        """Send one message; raises a DeliveryError subclass on failure."""
        ...

    async def edit(self, ref: MessageRef, reply: Reply) -> MessageRef:
        """Replace a message's content. Returns the message's ref, which may be new when the
        platform cannot change a message's kind in place (text into a photo, say)."""
        ...
