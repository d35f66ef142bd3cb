"""The core's Messenger port on Telegram: send and edit messages, with Telegram's errors turned
into the core's delivery errors."""

from __future__ import annotations

import contextlib
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from telegram import Bot, Message, ReplyParameters
from telegram.error import BadRequest, Forbidden, RetryAfter, TelegramError, TimedOut

from bots.telegram import render
from bots.telegram.limiter import SendOptions, retry_seconds
from core.messenger import (
    DeliveryError,
    DeliveryUncertain,
    MessageGone,
    MessageRef,
    OnWire,
    RetryLater,
    Unreachable,
)
from core.replies import Reply

log = logging.getLogger(__name__)

PLATFORM = "telegram"
TEXT_MESSAGES_REMEMBERED = 2048

MarkUnreachable = Callable[[str], Awaitable[None]]
# Telegram's words for an edit of a message that was deleted or is too old.
GONE = ("message to edit not found", "message can't be edited", "message_id_invalid")


def chat_key(chat_id: str | int) -> int | str:
    """Telegram takes numeric ids as numbers, and channels also as @username."""
    try:
        return int(chat_id)
    except ValueError:
        return str(chat_id)


def _options(on_wire: OnWire | None) -> dict[str, Any]:
    """With a hook the caller (the outbox) retries a 429 itself, so the row is not "sending" meanwhile."""
    return {} if on_wire is None else {"rate_limit_args": SendOptions(retries=0, on_wire=on_wire)}


def is_private(chat_id: str) -> bool:
    return isinstance(chat_key(chat_id), int) and int(chat_id) > 0


@contextlib.asynccontextmanager
async def delivery_errors(chat_id: str, on_blocked: Callable[[], Awaitable[None]]) -> AsyncIterator[None]:
    """Telegram's errors as the core's: what the caller should do about a failed send."""
    try:
        yield
    except Forbidden as exc:
        await on_blocked()
        raise Unreachable(f"chat {chat_id}: {exc.message}") from exc
    except RetryAfter as exc:
        raise RetryLater(retry_seconds(exc)) from exc
    except TimedOut as exc:
        if "Pool timeout" in exc.message:  # PTB's words for a request that never left this process
            raise RetryLater(1.0) from exc
        raise DeliveryUncertain(f"chat {chat_id}: no answer from Telegram") from exc
    except TelegramError as exc:
        raise DeliveryError(f"chat {chat_id}: {exc.message}") from exc
    except OSError as exc:  # the image file is gone
        raise DeliveryError(f"chat {chat_id}: {exc}") from exc


class TelegramMessenger:
    platform = PLATFORM
    rate_per_second = 25.0
    # A photo upload takes a good part of a second; the outbox keeps this many waiting for Telegram's
    # answer so the pace holds (its own limiter and the one in bots/telegram/limiter.py still space them).
    max_in_flight = 8
    calls_on_wire = True  # the flood limiter calls the outbox's on_wire hook once its waits are over

    def __init__(self, bot: Bot, mark_unreachable: MarkUnreachable | None = None) -> None:
        self.bot = bot
        self._mark_unreachable = mark_unreachable
        self._blocked: set[str] = set()  # private chats that answered 403, until the person writes again
        self._texts: OrderedDict[tuple[str, str], None] = OrderedDict()  # recent text messages we sent

    def reachable_again(self, chat_id: str) -> None:
        self._blocked.discard(chat_id)

    async def send(
        self,
        chat_id: str,
        reply: Reply,
        *,
        reply_to: int | None = None,
        selective: bool = True,
        on_wire: OnWire | None = None,
    ) -> MessageRef:
        if chat_id in self._blocked:
            raise Unreachable(f"chat {chat_id} blocked the bot")
        async with delivery_errors(chat_id, lambda: self._blocked_by(chat_id)):
            message = await self._send(chat_id, reply, reply_to, selective, on_wire)
        # Telegram's ids of the photo as it stored it, every size: /verify knows the photo by them later.
        files = tuple(size.file_unique_id for size in message.photo)
        ref = MessageRef(PLATFORM, chat_id, str(message.message_id), files)
        if reply.image is None:
            self._remember_text(ref)
        return ref

    async def _send(
        self, chat_id: str, reply: Reply, reply_to: int | None, selective: bool, on_wire: OnWire | None
    ) -> Message:
        options: dict[str, Any] = {"reply_markup": render.markup(reply, selective=selective), **_options(on_wire)}
        if reply_to is not None:
            options["reply_parameters"] = ReplyParameters(reply_to, allow_sending_without_reply=True)
        if reply.image is None:
            return await self.bot.send_message(chat_key(chat_id), render.message_text(reply), **options)
        with reply.image.path.open("rb") as photo:
            return await self.bot.send_photo(chat_key(chat_id), photo, caption=render.caption(reply), **options)

    async def edit(self, ref: MessageRef, reply: Reply, *, on_wire: OnWire | None = None) -> MessageRef:
        """Edit in place where Telegram can; a text message cannot become a photo, so it is
        replaced: the photo is sent, then the text deleted."""
        if reply.image is not None and (ref.chat_id, ref.message_id) in self._texts:
            return await self._replace(ref, reply, on_wire)
        try:
            async with delivery_errors(ref.chat_id, lambda: self._blocked_by(ref.chat_id)):
                await self._edit(ref, reply, on_wire)
        except DeliveryError as exc:
            cause = exc.__cause__
            if isinstance(cause, BadRequest) and "not modified" in cause.message:
                return ref
            if isinstance(cause, BadRequest) and reply.image is not None and "no caption" in cause.message:
                return await self._replace(ref, reply, on_wire)  # a text message we did not send in this run
            if isinstance(cause, BadRequest) and any(words in cause.message.lower() for words in GONE):
                raise MessageGone(f"chat {ref.chat_id}: {cause.message}") from cause
            raise
        return ref

    async def _edit(self, ref: MessageRef, reply: Reply, on_wire: OnWire | None) -> None:
        chat, message_id = chat_key(ref.chat_id), int(ref.message_id)
        options: dict[str, Any] = {"reply_markup": render.keyboard(reply), **_options(on_wire)}
        if reply.image is None:
            try:
                await self.bot.edit_message_text(render.message_text(reply), chat, message_id, **options)
                return
            except BadRequest as exc:
                if "no text" not in exc.message:
                    raise
            # A photo keeps its picture and takes the text as its caption.
        await self.bot.edit_message_caption(chat, message_id, caption=render.caption(reply), **options)

    async def _replace(self, ref: MessageRef, reply: Reply, on_wire: OnWire | None) -> MessageRef:
        new = await self.send(ref.chat_id, reply, on_wire=on_wire)
        await self.delete(ref)
        return new

    async def delete(self, ref: MessageRef) -> None:
        self._texts.pop((ref.chat_id, ref.message_id), None)
        try:
            await self.bot.delete_message(chat_key(ref.chat_id), int(ref.message_id))
        except TelegramError as exc:  # already gone, or too old to delete: the new message stands anyway
            log.info("could not delete message %s in chat %s: %s", ref.message_id, ref.chat_id, exc.message)

    async def _blocked_by(self, chat_id: str) -> None:
        if not is_private(chat_id):
            return
        self._blocked.add(chat_id)
        if self._mark_unreachable is None:
            return
        try:
            await self._mark_unreachable(chat_id)
        except Exception:  # the send failed either way; the flag is set again on the next 403
            log.exception("could not mark chat %s unreachable", chat_id)

    def _remember_text(self, ref: MessageRef) -> None:
        self._texts[(ref.chat_id, ref.message_id)] = None
        while len(self._texts) > TEXT_MESSAGES_REMEMBERED:
            self._texts.popitem(last=False)
