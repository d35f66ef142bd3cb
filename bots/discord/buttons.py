"""The core's buttons and questions as Discord components that survive a restart: every button is
one dynamic item whose custom_id is the core's action id, and a modal carries its question's
command in its custom_id (discord.py keeps modals in memory only)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import discord

from bots.discord import render
from core.cards import shorten
from core.replies import Ask, Reply

MODAL_PREFIX = "ask|"
MODAL_TITLE_LIMIT = 45
FIELD_LABEL_LIMIT = 45
DESCRIPTION_LIMIT = 100
PLACEHOLDER_LIMIT = 100
CUSTOM_ID_LIMIT = 100
ANSWER_FIELD = "answer"
ANSWER_LIMIT = 4000

Pressed = Callable[[discord.Interaction, str], Awaitable[None]]


class Action(discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"(?s)(?P<action>.+)"):
    """Any button of ours, on any message, sent before or after a restart."""

    def __init__(self, action: str, label: str = "", row: int | None = None) -> None:
        super().__init__(discord.ui.Button(label=label or None, custom_id=action, row=row))
        self.action = action

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: Any, /
    ) -> Action:
        return cls(match["action"], getattr(item, "label", None) or "")

    async def callback(self, interaction: discord.Interaction) -> None:
        pressed: Pressed | None = getattr(interaction.client, "pressed", None)  # the DiscordBot's
        if pressed is not None:
            await pressed(interaction, self.action)


def view(reply: Reply) -> discord.ui.View | None:
    """The reply's buttons for an interaction response: dynamic items, so discord.py keeps no
    per-message state for them."""
    if not reply.buttons:
        return None
    buttons = discord.ui.View(timeout=None)
    for row_number, row in enumerate(reply.buttons[: render.ROWS_LIMIT]):
        for button in row[: render.BUTTONS_PER_ROW]:
            buttons.add_item(Action(button.action, shorten(button.label, render.LABEL_LIMIT), row_number))
    return buttons


class AskModal(discord.ui.Modal):
    """The answer arrives in `on_interaction` by its custom_id, also after a restart, so the modal
    itself does nothing on submit."""

    async def on_submit(self, interaction: discord.Interaction) -> None:
        return None


def modal_id(ask: Ask) -> str | None:
    """The question's command and prefix, which is all an answer needs; None when too long."""
    custom_id = f"{MODAL_PREFIX}{ask.command}|{ask.prefix}"
    return custom_id if len(custom_id) <= CUSTOM_ID_LIMIT else None


def ask_of(custom_id: str) -> Ask | None:
    if not custom_id.startswith(MODAL_PREFIX):
        return None
    command, _, prefix = custom_id.removeprefix(MODAL_PREFIX).partition("|")
    return Ask("", command, prefix)


def modal(ask: Ask) -> AskModal | None:
    custom_id = modal_id(ask)
    if custom_id is None:
        return None
    title = shorten(ask.question.split("\n", 1)[0], MODAL_TITLE_LIMIT) or "Your answer"
    form = AskModal(title=title, custom_id=custom_id, timeout=None)
    field: discord.ui.TextInput[AskModal] = discord.ui.TextInput(
        custom_id=ANSWER_FIELD,
        style=discord.TextStyle.paragraph,
        placeholder=shorten(ask.placeholder, PLACEHOLDER_LIMIT) or None,
        max_length=ANSWER_LIMIT,
    )
    label = discord.ui.Label(
        text=shorten(ask.command.title(), FIELD_LABEL_LIMIT),
        description=shorten(ask.question, DESCRIPTION_LIMIT) or None,
        component=field,
    )
    form.add_item(label)
    return form


def answer_of(data: dict[str, Any]) -> str:
    """The typed answer from a modal submit: text inputs inside Labels (type 18) or action rows."""
    for row in data.get("components", []):
        inner = [row["component"]] if "component" in row else row.get("components", [])
        for component in inner:
            if component.get("custom_id") == ANSWER_FIELD:
                return str(component.get("value") or "")
    return ""
