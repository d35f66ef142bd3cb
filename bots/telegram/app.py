"""Build the Telegram application and run it beside other bots on one event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from telegram import BotCommand, Update
from telegram.error import InvalidToken, NetworkError, TelegramError
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)
from telegram.request import HTTPXRequest

from bots.telegram import handlers
from bots.telegram.bot import TelegramBot
from bots.telegram.context import CORE, MESSENGER, WEBHOOK, BotContext
from bots.telegram.limiter import FloodLimiter
from bots.telegram.messenger import PLATFORM, TelegramMessenger
from bots.telegram.order import PerChat
from bots.telegram.render import fit
from bots.telegram.webhook import WebhookServer
from core import commands
from core.app import Core
from core.config import Settings

log = logging.getLogger(__name__)

COMMAND_NAME = re.compile(r"[a-z0-9_]{1,32}")
ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY]
DEFAULT_API = "https://api.telegram.org"

TelegramApp = Application[Any, BotContext, Any, Any, Any, Any]


@dataclass(frozen=True, slots=True)
class Tuning:
    """Timings that tests shorten; the defaults suit the real Telegram."""

    poll_timeout: float = 30.0  # long polling: how long one getUpdates may wait
    read_timeout: float = 15.0
    chat_interval: float = 1.0
    group_max: int = 20
    group_period: float = 60.0
    max_retries: int = 5  # RetryAfter waits before a send gives up with RetryLater
    start_retry_seconds: float = 10.0


def build_application(core: Core, settings: Settings, tuning: Tuning = Tuning()) -> TelegramApp:
    if settings.telegram_bot_token is None:
        raise ValueError("TELEGRAM_BOT_TOKEN is not set")
    # PTB logs the Bot API URL, which holds the token, at DEBUG: keep its loggers at INFO or above.
    ptb_log = logging.getLogger("telegram")
    if ptb_log.getEffectiveLevel() < logging.INFO:
        ptb_log.setLevel(logging.INFO)
    api = (settings.telegram_api_base_url or DEFAULT_API).rstrip("/")
    limiter = FloodLimiter(
        settings.telegram_messages_per_second,
        chat_interval=tuning.chat_interval,
        group_max=tuning.group_max,
        group_period=tuning.group_period,
        max_retries=tuning.max_retries,
    )
    bot = TelegramBot(
        settings.telegram_bot_token.get_secret_value(),
        base_url=f"{api}/bot",
        base_file_url=f"{api}/file/bot",
        # Requests wait in the limiter, not for a connection: a pool timeout would look like a lost send.
        request=HTTPXRequest(connection_pool_size=64, read_timeout=tuning.read_timeout, pool_timeout=60.0),
        get_updates_request=HTTPXRequest(read_timeout=tuning.read_timeout),
        rate_limiter=limiter,
    )
    application: TelegramApp = (
        ApplicationBuilder()
        .bot(bot)
        .context_types(ContextTypes(context=BotContext))
        .concurrent_updates(PerChat(core))  # concurrent across chats, in order within one
        .build()
    )
    messenger = TelegramMessenger(application.bot, lambda chat_id: core.mark_unreachable(PLATFORM, chat_id))
    messenger.rate_per_second = settings.telegram_messages_per_second  # the core's outbox paces itself by it
    application.bot_data[CORE] = core
    application.bot_data[MESSENGER] = messenger
    add_handlers(application)
    return application


def add_handlers(application: TelegramApp) -> None:
    application.add_handler(TypeHandler(Update, handlers.note_contact), group=-1)
    names = [name for name in commands.COMMANDS if COMMAND_NAME.fullmatch(name)]
    only_new = filters.UpdateType.MESSAGE  # an edited "/imagine" must not generate again
    application.add_handler(CommandHandler(names, handlers.command, filters=only_new))
    # Unknown commands get the core's hint, in private only: in a group they may be another bot's.
    application.add_handler(MessageHandler(filters.COMMAND & filters.ChatType.PRIVATE & only_new, handlers.command))
    application.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND & only_new, handlers.text))
    pictures = (filters.PHOTO | filters.Document.IMAGE) & filters.CAPTION & only_new
    application.add_handler(MessageHandler(pictures, handlers.picture))
    application.add_handler(CallbackQueryHandler(handlers.button))
    # Its own group, so it sees group messages that the handlers above also look at (and ignore).
    application.add_handler(MessageHandler(filters.ChatType.GROUPS & only_new, handlers.discussion), group=1)
    application.add_error_handler(handlers.on_error)


def command_list() -> list[BotCommand]:
    """The menu of commands, from the core's declarations (Telegram allows descriptions of 256 characters)."""
    listed = (c for c in commands.listed() if COMMAND_NAME.fullmatch(c.name))
    return [BotCommand(c.name, fit(c.summary_with_args, 256)) for c in listed]


def register_with_core(application: TelegramApp, settings: Settings) -> None:
    """The core sends progress edits and gallery posts on its own, through the messenger."""
    core: Core = application.bot_data[CORE]
    core.register_messenger(application.bot_data[MESSENGER])
    if settings.telegram_gallery_chat_id:
        core.register_gallery(PLATFORM, settings.telegram_gallery_chat_id)


async def _initialize(application: TelegramApp, stop: asyncio.Event, tuning: Tuning) -> bool:
    """Connect (getMe), retrying while Telegram cannot be reached. False when stopping or the token is bad."""
    while not stop.is_set():
        try:
            await application.initialize()
            return True
        except InvalidToken:
            log.error("Telegram refused TELEGRAM_BOT_TOKEN; the Telegram bot is not running")
            return False
        except NetworkError as exc:
            log.warning("cannot reach Telegram (%s); trying again in %.0f s", exc, tuning.start_retry_seconds)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), tuning.start_retry_seconds)
    return False


async def _start_receiving(application: TelegramApp, settings: Settings, tuning: Tuning) -> WebhookServer | None:
    if not settings.telegram_webhook_url:
        # build_application always gives the application an updater; PTB types it as optional.
        await application.updater.start_polling(  # type: ignore[union-attr]
            poll_interval=0, timeout=round(tuning.poll_timeout), allowed_updates=ALLOWED_UPDATES, bootstrap_retries=5
        )
        return None
    secret = (
        settings.telegram_webhook_secret.get_secret_value()
        if settings.telegram_webhook_secret
        else secrets.token_urlsafe(32)
    )
    server = WebhookServer(application, urlsplit(settings.telegram_webhook_url).path, secret)
    await server.start(settings.telegram_webhook_listen, settings.telegram_webhook_port)
    # Known before Telegram is told about it: updates may arrive as soon as it is.
    application.bot_data[WEBHOOK] = server
    await application.bot.set_webhook(
        settings.telegram_webhook_url, secret_token=secret, allowed_updates=ALLOWED_UPDATES
    )
    return server


async def run_telegram(
    core: Core, settings: Settings, stop: asyncio.Event, tuning: Tuning = Tuning(), *, receive: bool = True
) -> None:
    """Run until `stop` is set: long polling, or a webhook server when TELEGRAM_WEBHOOK_URL is set.
    Without `receive` (a process with the senders role only) the bot only sends the outbox."""
    await serve(build_application(core, settings, tuning), settings, stop, tuning, receive=receive)


async def serve(
    application: TelegramApp,
    settings: Settings,
    stop: asyncio.Event,
    tuning: Tuning = Tuning(),
    *,
    receive: bool = True,
) -> None:
    if not await _initialize(application, stop, tuning):
        return
    webhook: WebhookServer | None = None
    try:
        try:
            await application.bot.set_my_commands(command_list())
        except TelegramError as exc:  # the bot works without the menu
            log.warning("could not register the command list: %s", exc)
        register_with_core(application, settings)
        await application.start()
        if receive:
            webhook = await _start_receiving(application, settings, tuning)
        mode = "webhook" if webhook else "polling" if receive else "sending only"
        log.info("Telegram bot @%s is running (%s)", application.bot.username, mode)
        await stop.wait()
    finally:
        await _stop(application, webhook)


async def _stop(application: TelegramApp, webhook: WebhookServer | None) -> None:
    # PTB's order: the updater first, then the application, then shutdown.
    if webhook is not None:
        await webhook.stop()
    if application.updater is not None and application.updater.running:
        await application.updater.stop()
    if application.running:
        await application.stop()
    await application.shutdown()
