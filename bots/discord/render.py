"""Core replies as Discord message parts: a post as an embed with its picture attached, other
replies as plain content, buttons as components whose custom_id is the core's action id."""

from __future__ import annotations

import discord

from core.cards import shorten
from core.replies import Reply

CONTENT_LIMIT = 2000
TITLE_LIMIT = 256
DESCRIPTION_LIMIT = 4096
LABEL_LIMIT = 80
ROWS_LIMIT = 5
BUTTONS_PER_ROW = 5
POST_COLOUR = discord.Colour.blurple()


def content(reply: Reply) -> str | None:
    """A post says everything in its embed; anything else is plain text."""
    if is_post(reply):
        return None
    text = reply.ask.question if reply.ask is not None and not reply.text else reply.text
    return shorten(text, CONTENT_LIMIT) if text else ("…" if reply.image is None else None)


def is_post(reply: Reply) -> bool:
    return reply.post_id is not None


def embed(reply: Reply) -> discord.Embed | None:
    """A post's card: its first line ("#1 by @alice") as the title, the prompt and credits below."""
    if not is_post(reply):
        return None
    text = reply.image.caption if reply.image is not None and reply.image.caption else reply.text
    title, _, rest = text.partition("\n")
    return discord.Embed(
        title=shorten(title, TITLE_LIMIT) or None,
        description=shorten(rest, DESCRIPTION_LIMIT) or None,
        colour=POST_COLOUR,
    )


def view(reply: Reply) -> discord.ui.View | None:
    """The core's buttons, row by row; Discord shows at most 5 rows of 5."""
    if not reply.buttons:
        return None
    buttons = discord.ui.View(timeout=None)
    for row_number, row in enumerate(reply.buttons[:ROWS_LIMIT]):
        for button in row[:BUTTONS_PER_ROW]:
            label = shorten(button.label, LABEL_LIMIT)
            buttons.add_item(discord.ui.Button(label=label, custom_id=button.action, row=row_number))
    return buttons


def picture(reply: Reply) -> discord.File | None:
    """The image as an upload, named after its stored file (names are content hashes, so an edit
    can tell whether the message already shows it)."""
    if reply.image is None:
        return None
    return discord.File(reply.image.path, filename=reply.image.path.name)


def picture_name(reply: Reply) -> str | None:
    return None if reply.image is None else reply.image.path.name
