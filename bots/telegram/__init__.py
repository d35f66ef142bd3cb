"""The Telegram bot: a thin adapter from Telegram updates to core calls and back (python-telegram-bot)."""

from bots.telegram.app import Tuning, build_application, run_telegram

__all__ = ["Tuning", "build_application", "run_telegram"]
