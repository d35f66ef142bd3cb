"""One interaction and the core's replies to it: answered at once when the core is quick, else
deferred before Discord's 3 seconds run out and completed afterwards; errors and notices only for
the person (ephemeral), a generation's progress as a normal message the outbox keeps editing."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any

import discord
from discord.utils import MISSING

from bots.discord import buttons, render
from bots.discord.messenger import PLATFORM, DiscordMessenger, dm_chat
from core.actor import Actor
from core.app import OOPS, Core
from core.messenger import DeliveryError
from core.replies import Reply

log = logging.getLogger(__name__)

FOLLOWED_HERE = "Your image is on its way: the message below shows its progress and becomes the post."
FOLLOWED_BY_DM = "Your image is on its way: I am showing its progress in our DMs, where it becomes the post."


def actor_of(interaction: discord.Interaction) -> Actor:
    """In a server the person is not in a chat of their own, but the bot can always DM them."""
    user = interaction.user
    in_dm = interaction.context.dm_channel or (interaction.guild_id is None and interaction.channel_id is None)
    own = dm_chat(user.id)
    return Actor(
        PLATFORM,
        str(user.id),
        chat_id=own if in_dm else str(interaction.channel_id),
        username=user.name,
        display_name=user.display_name,
        private=in_dm,
        direct_chat=own,
    )


def _parts(reply: Reply) -> dict[str, Any]:
    """A new message's parts; only those present, as discord.py treats None and MISSING apart."""
    parts: dict[str, Any] = {"content": render.content(reply), "allowed_mentions": discord.AllowedMentions.none()}
    found = {"embed": render.embed(reply), "view": buttons.view(reply), "file": render.picture(reply)}
    parts.update({key: value for key, value in found.items() if value is not None})
    return parts


def _edit_parts(reply: Reply, shown: list[str]) -> dict[str, Any]:
    """An edit's parts: everything replaced; the picture re-sent only when the message lacks it."""
    wanted = render.picture_name(reply)
    attachments: Any = MISSING  # left out: the picture the message shows stays
    if wanted is None:
        attachments = []
    elif wanted not in shown:
        attachments = [render.picture(reply)]
    return {
        "content": render.content(reply),
        "embed": render.embed(reply),
        "view": buttons.view(reply),
        "attachments": attachments,
        "allowed_mentions": discord.AllowedMentions.none(),
    }


class Exchange:
    def __init__(self, interaction: discord.Interaction, core: Core, messenger: DiscordMessenger) -> None:
        self.interaction = interaction
        self.core = core
        self.messenger = messenger
        self.actor = actor_of(interaction)
        self.thinking = False  # deferred with a "thinking" message that the first answer replaces
        self.progress_by_dm = False  # a generation's progress goes to the person's DMs

    @property
    def pressed(self) -> bool:
        return self.interaction.type is discord.InteractionType.component

    async def run(self, call: Awaitable[list[Reply]], direct_seconds: float) -> None:
        """The core's answer, deferred (ephemerally, or as an update of the pressed message) when it
        is not there within `direct_seconds`; an error of ours ends in the core's apology."""
        try:
            task = asyncio.ensure_future(call)
            done, _ = await asyncio.wait({task}, timeout=direct_seconds)
            if not done:
                await self._defer()
            await self.deliver(await task)
        except Exception:
            log.exception("interaction %s failed", self.interaction.id)
            await self._apologise()

    async def _defer(self) -> None:
        if self.pressed:
            await self.interaction.response.defer()  # the pressed message may still be edited
        else:
            await self.interaction.response.defer(ephemeral=True, thinking=True)
            self.thinking = True

    async def deliver(self, replies: list[Reply]) -> None:
        # An edit of the pressed message must be the interaction's response, before any notice.
        ordered = sorted(replies, key=lambda r: not r.edit) if self.pressed else replies
        for reply in ordered:
            if reply.ask is not None and await self._open_modal(reply):
                continue
            if reply.job_id is not None:
                await self._follow(reply)
            elif reply.edit and self.pressed:
                await self._edit_pressed(reply)
            else:
                await self.answer(reply, ephemeral=reply.error or reply.notice)

    async def answer(self, reply: Reply, *, ephemeral: bool) -> None:
        response = self.interaction.response
        if not response.is_done():
            await response.send_message(**_parts(reply), ephemeral=ephemeral)
        elif self.thinking:  # after an ephemeral deferral, the first answer is ephemeral whatever we ask
            self.thinking = False
            await self.interaction.edit_original_response(**_edit_parts(reply, []))
        else:
            await self.interaction.followup.send(**_parts(reply), ephemeral=ephemeral)

    async def _edit_pressed(self, reply: Reply) -> None:
        message = self.interaction.message
        parts = _edit_parts(reply, [a.filename for a in message.attachments] if message else [])
        if not self.interaction.response.is_done():
            await self.interaction.response.edit_message(**parts)
        else:  # deferred as an update: the original response is the pressed message
            await self.interaction.edit_original_response(**parts)

    async def _open_modal(self, reply: Reply) -> bool:
        """A question as a modal; only possible as the interaction's first response."""
        assert reply.ask is not None
        form = buttons.modal(reply.ask)
        if form is None or self.interaction.response.is_done():
            return False
        await self.interaction.response.send_modal(form)
        return True

    async def _follow(self, reply: Reply) -> None:
        """A generation's progress as a normal message, which the outbox edits as the job goes on
        (an interaction's own messages can be edited for 15 minutes only). The person's note goes
        first: the progress message waits its turn in the channel's and the global rate limits,
        which a burst fills for seconds, and the interaction must be acknowledged within 3 s."""
        chat = self.actor.direct_chat if self.progress_by_dm else self.actor.chat_id
        assert chat is not None and reply.job_id is not None
        note = FOLLOWED_BY_DM if chat != self.actor.chat_id else FOLLOWED_HERE
        await self.answer(Reply(text=note), ephemeral=True)
        try:
            ref = await self.messenger.send(chat, reply)
        except DeliveryError as exc:  # e.g. a channel the bot cannot write to (installed by a user)
            log.info("cannot show job %s's progress in chat %s: %s", reply.job_id, chat, exc)
            await self.interaction.edit_original_response(**_edit_parts(reply, []))  # instead of the note
            return
        await self.core.progress_shown(reply.job_id, ref)

    async def _apologise(self) -> None:
        try:
            await self.answer(Reply(text=OOPS, error=True), ephemeral=True)
        except discord.HTTPException as exc:  # too late to answer (10062), or Discord is down
            log.warning("could not apologise for interaction %s: %s", self.interaction.id, exc)
