"""Core replies as Telegram message parts: text and captions within Telegram's limits, keyboards."""

from __future__ import annotations

from telegram import ForceReply, InlineKeyboardButton, InlineKeyboardMarkup

from core.cards import shorten
from core.replies import Ask, Reply

TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
NOTICE_LIMIT = 200  # the toast shown when a button press is answered
PLACEHOLDER_LIMIT = 64


def utf16_length(value: str) -> int:
    return len(value.encode("utf-16-le")) // 2


def fit(value: str, limit: int) -> str:
    """Cut to Telegram's limit, which counts UTF-16 code units (an emoji may take two)."""
    cut, budget = shorten(value, limit), limit
    while utf16_length(cut) > limit:
        budget -= utf16_length(cut) - limit
        cut = shorten(value, budget)
    return cut


def message_text(reply: Reply) -> str:
    return fit(reply.text or "…", TEXT_LIMIT)


def caption(reply: Reply) -> str:
    text = reply.image.caption if reply.image is not None and reply.image.caption else reply.text
    return fit(text, CAPTION_LIMIT)


def notice(reply: Reply) -> str:
    return fit(reply.text, NOTICE_LIMIT)


def keyboard(reply: Reply) -> InlineKeyboardMarkup | None:
    """Core buttons as an inline keyboard; each button's callback data is its action id."""
    if not reply.buttons:
        return None
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(button.label, callback_data=button.action) for button in row] for row in reply.buttons]
    )


def force_reply(ask: Ask, *, selective: bool) -> ForceReply:
    """Opens the reply field, so the person's next message answers the question."""
    placeholder = fit(ask.placeholder, PLACEHOLDER_LIMIT) if ask.placeholder else None
    return ForceReply(selective=selective, input_field_placeholder=placeholder)


def markup(reply: Reply, *, selective: bool = True) -> InlineKeyboardMarkup | ForceReply | None:
    if reply.ask is not None:
        return force_reply(reply.ask, selective=selective)
    return keyboard(reply)
