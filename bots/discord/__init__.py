"""The Discord adapter: discord.py on the core's commands and outbox."""
