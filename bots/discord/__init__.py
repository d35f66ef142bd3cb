"""The Discord adapter: discord.py on the core's commands and outbox."""

from bots.discord.app import run_discord

__all__ = ["run_discord"]
