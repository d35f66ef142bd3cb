"""The platform-neutral command layer. Importing it registers every command."""

# Import order is the order of /help.
from core.commands import account, linking, posts, comments, verify, generation, follows, feeds, preferences  # noqa: F401  # isort: skip
from core.commands import privacy, blocks, reports, moderation, admin  # noqa: F401  # isort: skip
from core.commands.registry import COMMANDS, Command, Context, listed

__all__ = ["COMMANDS", "Command", "Context", "listed"]
