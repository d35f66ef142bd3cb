"""Slash commands derived from the core's declarations: one `app_commands.Command` per listed core
command, its options typed from the declared parameters, so a changed declaration changes what is
synced. Nothing is declared here by hand."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import discord
from discord import app_commands

from core import commands
from core.params import Param, ParamType

# What a slash command does with its typed values: the adapter's one generic handler.
Run = Callable[[discord.Interaction, str, dict[str, Any]], Awaitable[None]]
Suggest = Callable[[discord.Interaction, str, str, str], Awaitable[list[app_commands.Choice[str]]]]

# Commands work in servers, in DMs with the bot and, for people who installed the app on their
# account, in any DM or group DM.
CONTEXTS = app_commands.AppCommandContext(guild=True, dm_channel=True, private_channel=True)
INSTALLS = app_commands.AppInstallationType(guild=True, user=True)


def annotation(param: Param) -> Any:
    """The Python annotation discord.py turns into the option's type (and bounds)."""
    match param.type:
        case ParamType.INT if param.min is not None and param.max is not None:
            return app_commands.Range[int, param.min, param.max]
        case ParamType.INT:
            return int
        case ParamType.BOOL:
            return bool
        case ParamType.IMAGE:  # an attachment option; the adapter fetches it into an Upload
            return discord.Attachment
        case _:  # text, words, choices, and handles and posts: strings, so "@alice" and "#12" work typed
            return str


def slash_commands(run: Run, suggest: Suggest) -> list[app_commands.Command[Any, ..., None]]:
    return [slash_command(c, run, suggest) for c in commands.listed()]


def slash_command(command: commands.Command, run: Run, suggest: Suggest) -> app_commands.Command[Any, ..., None]:
    shown = [p for p in command.params if not p.hidden]

    async def callback(interaction: discord.Interaction, **values: Any) -> None:
        await run(interaction, command.name, values)

    parameters = [inspect.Parameter("interaction", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    parameters += [
        inspect.Parameter(
            p.name,
            inspect.Parameter.KEYWORD_ONLY,
            annotation=annotation(p),
            default=inspect.Parameter.empty if p.required else None,
        )
        for p in shown
    ]
    callback.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    # discord.py reads descriptions and choices from these attributes, as its decorators set them.
    callback.__discord_app_commands_param_description__ = {p.name: p.description for p in shown}  # type: ignore[attr-defined]
    callback.__discord_app_commands_param_choices__ = {  # type: ignore[attr-defined]
        p.name: [app_commands.Choice(name=c, value=c) for c in p.choices] for p in shown if p.choices
    }
    slash: app_commands.Command[Any, ..., None] = app_commands.Command(
        name=command.name,
        description=command.summary[:100],
        callback=callback,
        allowed_contexts=CONTEXTS,
        allowed_installs=INSTALLS,
    )
    for param in shown:
        if param.suggests:
            slash.autocomplete(param.name)(_completer(command.name, param.name, suggest))
    return slash


def _completer(
    name: str, param: str, suggest: Suggest
) -> Callable[[discord.Interaction, str], Coroutine[Any, Any, list[app_commands.Choice[str]]]]:
    async def complete(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        return await suggest(interaction, name, param, current)

    return complete
