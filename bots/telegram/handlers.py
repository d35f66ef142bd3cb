"""Telegram updates turned into core calls: commands, answers to questions, button presses."""

from __future__ import annotations

import logging

from telegram import Chat, Document, Message, MessageOriginChannel, PhotoSize, Update
from telegram.error import NetworkError, TelegramError

from bots.telegram.context import BotContext
from bots.telegram.delivery import Origin, answer_press, deliver, take_ask
from bots.telegram.messenger import PLATFORM
from core.actor import Actor
from core.app import OOPS
from core.cards import post_of_card
from core.params import Upload

log = logging.getLogger(__name__)


def actor_of(update: Update) -> Actor | None:
    user, chat = update.effective_user, update.effective_chat
    if user is None or chat is None:
        return None
    return Actor(
        PLATFORM,
        str(user.id),
        chat_id=str(chat.id),
        username=user.username,
        display_name=user.full_name,
        private=chat.type == Chat.PRIVATE,
    )


async def note_contact(update: Update, context: BotContext) -> None:
    """Someone who writes or presses can be reached again, even after blocking the bot once."""
    if update.effective_user is not None:
        context.messenger.reachable_again(str(update.effective_user.id))


async def command(update: Update, context: BotContext) -> None:
    """Any core command, /imagine or /follow@thisbot alike: the core parses the line. In reply to a
    picture, a command that takes one (/edit <prompt>) gets that picture."""
    message, actor = update.message, actor_of(update)
    if message is None or actor is None or not message.text:
        return
    replied = message.reply_to_message
    if replied is not None and _open_thread(replied) is not None:
        replied = None  # in a comment thread every message replies to the gallery post: not a photo chosen
    upload = None
    if replied is not None and (replied.photo or replied.document) and context.core.takes_upload(message.text):
        upload = await download(replied, context.core.settings.upload_max_mb)
    replies = await context.core.handle(actor, message.text, request_id=str(message.message_id), upload=upload)
    await deliver(context, Origin.of_message(message, actor.user_id), replies)


async def picture(update: Update, context: BotContext) -> None:
    """A photo or an image file captioned with a command that takes it (/edit <prompt>, /imagine <prompt>)."""
    message, actor = update.message, actor_of(update)
    if message is None or actor is None or not message.caption or not context.core.takes_upload(message.caption):
        return
    upload = await download(message, context.core.settings.upload_max_mb)
    replies = await context.core.handle(actor, message.caption, request_id=str(message.message_id), upload=upload)
    await deliver(context, Origin.of_message(message, actor.user_id), replies)


async def download(message: Message, limit_mb: float) -> Upload | None:
    """The message's picture (the largest size of a photo, or a document as sent). One over the limit
    is not fetched: the core refuses it by the size Telegram reports."""
    attachment: PhotoSize | Document | None = message.photo[-1] if message.photo else message.document
    if attachment is None:
        return None
    # A photo is Telegram's re-encoding of what was sent; its unique id names that very file, which
    # /verify recognises when it is one of ours forwarded back.
    fingerprint = attachment.file_unique_id if message.photo else None
    recompressed = bool(message.photo)
    if attachment.file_size and attachment.file_size > limit_mb * 1_000_000:
        return Upload(b"", size=attachment.file_size, fingerprint=fingerprint, recompressed=recompressed)
    data = await (await attachment.get_file()).download_as_bytearray()
    name = getattr(attachment, "file_name", None) or "photo.jpg"
    return Upload(bytes(data), name, fingerprint=fingerprint, recompressed=recompressed)


async def text(update: Update, context: BotContext) -> None:
    """Plain text: the answer to a question asked with a reply prompt, or (in private) a hint."""
    message, actor = update.message, actor_of(update)
    if message is None or actor is None or not message.text:
        return
    replied = message.reply_to_message
    chat_id = str(message.chat.id)
    ask = take_ask(context.user_data, chat_id, str(replied.message_id) if replied else None)
    if ask is None and message.chat.type != Chat.PRIVATE:
        return  # chatter in a group is not for us
    request_id = str(message.message_id)  # message ids are unique in a chat: a redelivery is recognised
    card = _card_replied_to(replied, context.bot.id) if ask is None else None
    if ask is not None:
        replies = await context.core.answer(actor, ask, message.text, request_id=request_id)
    elif card is not None:  # a plain reply to one of our post cards, in private: a comment on that post
        options = {"post": card, "text": message.text}
        replies = await context.core.invoke(actor, "comment", options, request_id=request_id)
    else:
        replies = await context.core.handle(actor, message.text, request_id=request_id)
    await deliver(context, Origin.of_message(message, actor.user_id), replies)


def _card_replied_to(replied: Message | None, bot_id: int) -> int | None:
    if replied is None or replied.from_user is None or replied.from_user.id != bot_id:
        return None
    return post_of_card(replied.caption or replied.text)


async def discussion(update: Update, context: BotContext) -> None:
    """The gallery channel's discussion group: Telegram forwards each channel post there on its own,
    which opens a comment thread (message_thread_id = the forward's id); messages in it are comments."""
    message = update.message
    if message is None or message.chat.type not in (Chat.GROUP, Chat.SUPERGROUP):
        return
    group = str(message.chat.id)
    if _open_thread(message) is not None:
        await _thread_opened(context, group, message)
        return
    replied = message.reply_to_message
    if replied is not None and _open_thread(replied) is not None:  # a thread that began before we were there
        await _thread_opened(context, group, replied)
    actor = actor_of(update)
    thread = message.message_thread_id
    if actor is None or thread is None or message.sender_chat is not None or not message.text:
        return  # a comment posted as a channel has no person behind it
    if message.text.startswith("/"):
        return
    replies = await context.core.thread_comment(actor, str(thread), message.text, request_id=str(message.message_id))
    problems = [r for r in replies or [] if r.error]  # a comment is quiet; only a refusal is answered
    if problems:
        await deliver(context, Origin.of_message(message, actor.user_id), problems)


def _open_thread(message: Message) -> MessageOriginChannel | None:
    origin = message.forward_origin
    return origin if message.is_automatic_forward and isinstance(origin, MessageOriginChannel) else None


async def _thread_opened(context: BotContext, group: str, forward: Message) -> None:
    origin = _open_thread(forward)
    assert origin is not None
    names = [str(origin.chat.id)] + ([f"@{origin.chat.username}"] if origin.chat.username else [])
    await context.core.thread_opened(PLATFORM, group, str(forward.message_id), names, str(origin.message_id))


async def button(update: Update, context: BotContext) -> None:
    """A button press; its callback data is the core's action id."""
    query, actor = update.callback_query, actor_of(update)
    if query is None:
        return
    if actor is None or not query.data:
        await answer_press(query, None)
        return
    replies = await context.core.press(actor, query.data, request_id=f"press:{query.id}")
    await deliver(context, Origin.of_press(query), replies)


async def on_error(update: object, context: BotContext) -> None:
    """Log what went wrong; the person gets one friendly line, never a stack trace."""
    error = context.error
    if isinstance(error, NetworkError):
        log.warning("network error: %s", error)
        return
    log.error("error while handling an update", exc_info=error)
    if not isinstance(update, Update):
        return
    if update.callback_query is not None:
        await answer_press(update.callback_query, None)
    chat = update.effective_chat
    if chat is not None and chat.type == Chat.PRIVATE:
        try:
            await context.bot.send_message(chat.id, OOPS)
        except TelegramError:
            log.info("could not tell chat %s that something went wrong", chat.id)
