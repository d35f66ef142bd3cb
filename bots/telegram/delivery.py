"""Core replies delivered where an update came from: the chat, or the pressed message."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from telegram import CallbackQuery, Chat, Message
from telegram.error import TelegramError

from bots.telegram import render
from bots.telegram.context import BotContext
from bots.telegram.messenger import PLATFORM
from core import turns
from core.messenger import DeliveryError, MessageRef, Unreachable
from core.replies import Ask, Reply

log = logging.getLogger(__name__)

ASKS = "asks"
ASKS_KEPT = 20


@dataclass(frozen=True, slots=True)
class Origin:
    chat_id: str  # where new messages go
    user_id: str
    reply_to: int | None = None  # the person's message, quoted in groups
    query: CallbackQuery | None = None
    pressed: MessageRef | None = None  # the message whose button was pressed

    @classmethod
    def of_message(cls, message: Message, user_id: str) -> Origin:
        in_group = message.chat.type in (Chat.GROUP, Chat.SUPERGROUP)
        return cls(str(message.chat.id), user_id, reply_to=message.message_id if in_group else None)

    @classmethod
    def of_press(cls, query: CallbackQuery) -> Origin:
        message = query.message
        pressed = MessageRef(PLATFORM, str(message.chat.id), str(message.message_id)) if message else None
        # Nobody can answer in a channel: anything that is not an edit goes to the person privately.
        in_channel = message is None or message.chat.type == Chat.CHANNEL
        chat_id = str(query.from_user.id) if in_channel or message is None else str(message.chat.id)
        return cls(chat_id, str(query.from_user.id), query=query, pressed=pressed)

    @property
    def in_group(self) -> bool:
        return self.chat_id.startswith("-")


async def deliver(context: BotContext, origin: Origin, replies: list[Reply]) -> None:
    await turns.hand_over()  # the core is done with this update; the chat's next one may start
    answer: str | None = None
    try:
        for reply in replies:
            if reply.notice and origin.query is not None and answer is None:
                answer = render.notice(reply)
            elif reply.edit and origin.pressed is not None:
                await context.messenger.edit(origin.pressed, reply)
            else:
                await send(context, origin, reply)
    except Unreachable:
        log.info("chat %s cannot be reached", origin.chat_id)
        if origin.query is not None and origin.chat_id == origin.user_id:
            answer = f"Start a chat with @{context.bot.username} first, then press again."
    except DeliveryError as exc:
        log.warning("delivery failed: %s", exc)
    finally:
        if origin.query is not None:
            await answer_press(origin.query, answer)


async def answer_press(query: CallbackQuery, text: str | None) -> None:
    """CallbackQueries need to be answered, even silently, or the button keeps spinning."""
    try:
        await query.answer(text)
    except TelegramError as exc:  # too old to answer: nothing to do about it
        log.info("could not answer a button press: %s", exc.message)


async def send(context: BotContext, origin: Origin, reply: Reply) -> MessageRef:
    # In a group a pressed button is not a message of the person's, so the reply field opens for all;
    # only the person who pressed is listened to.
    selective = not (origin.in_group and origin.query is not None)
    reply_to = origin.reply_to if origin.query is None else None
    ref = await context.messenger.send(origin.chat_id, reply, reply_to=reply_to, selective=selective)
    if reply.ask is not None:
        remember_ask(context.user_data, ref, reply.ask)
    if reply.job_id is not None:  # the core edits this message as the generation goes on
        await context.core.progress_shown(reply.job_id, ref)
    if reply.post_id is not None and ref.files:
        await context.core.files_sent(ref, reply.post_id)
    return ref


def remember_ask(user_data: dict[Any, Any] | None, ref: MessageRef, ask: Ask) -> None:
    if user_data is None:
        return
    asks: dict[tuple[str, str], Ask] = user_data.setdefault(ASKS, {})
    asks[(ref.chat_id, ref.message_id)] = ask
    while len(asks) > ASKS_KEPT:
        del asks[next(iter(asks))]


def take_ask(user_data: dict[Any, Any] | None, chat_id: str, message_id: str | None) -> Ask | None:
    """The question this message answers: the one it replies to, else (in a private chat) the latest."""
    asks: dict[tuple[str, str], Ask] = (user_data or {}).get(ASKS, {})
    if message_id is not None:
        return asks.pop((chat_id, message_id), None)
    latest = [key for key in asks if key[0] == chat_id]
    return asks.pop(latest[-1]) if latest else None
