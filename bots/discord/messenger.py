"""The core's Messenger port on Discord: messages to channels and, for people, by DM (the DM
channel is created once, then reused), with Discord's errors turned into the core's.

Chat ids: a channel's id ("1234"), or "dm:<user id>" for a person. Sends are paced below
Discord's limits (50 requests a second overall, far fewer DMs) on top of discord.py's own
per-route buckets. discord.py waits out a 429 itself when `retry_after` is within the client's
`max_ratelimit_timeout` and then sends once; a longer one comes back as RetryLater, so the
client must have one (`discord.Client(max_ratelimit_timeout=30)`), below this messenger's timeout."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import discord
from aiolimiter import AsyncLimiter
from discord.http import handle_message_parameters

from bots.discord import render
from core.messenger import DeliveryError, DeliveryUncertain, MessageRef, RetryLater, Unreachable
from core.replies import Reply

log = logging.getLogger(__name__)

PLATFORM = "discord"
DM_PREFIX = "dm:"
GLOBAL_PER_SECOND = 45.0  # Discord's global limit is 50
REMEMBERED = 4096  # DM channels and pictures of messages kept in memory
GONE = {10003, 10013}  # unknown channel, unknown user: the chat is gone for good

MarkUnreachable = Callable[[str], Awaitable[None]]


def dm_chat(user_id: int | str) -> str:
    """The chat id through which the core reaches a person on Discord."""
    return f"{DM_PREFIX}{user_id}"


def is_dm(chat_id: str) -> bool:
    return chat_id.startswith(DM_PREFIX)


@contextlib.asynccontextmanager
async def delivery_errors(chat_id: str, on_blocked: Callable[[], Awaitable[None]]) -> AsyncIterator[None]:
    """Discord's errors as the core's: what the caller should do about a failed send."""
    try:
        yield
    except discord.Forbidden as exc:  # 50007 (the person blocks DMs from us), or no access to a channel
        await on_blocked()
        raise Unreachable(f"chat {chat_id}: {exc.text or exc.status} ({exc.code})") from exc
    except discord.NotFound as exc:
        if exc.code in GONE:
            await on_blocked()
            raise Unreachable(f"chat {chat_id}: {exc.text}") from exc
        raise DeliveryError(f"chat {chat_id}: {exc.text} ({exc.code})") from exc
    except discord.RateLimited as exc:  # longer than discord.py waits by itself
        raise RetryLater(exc.retry_after) from exc
    except discord.HTTPException as exc:
        raise DeliveryError(f"chat {chat_id}: {exc.status} {exc.text} ({exc.code})") from exc
    except TimeoutError as exc:
        raise DeliveryUncertain(f"chat {chat_id}: no answer from Discord") from exc
    except aiohttp.ClientConnectorError as exc:  # before anything was sent
        raise DeliveryError(f"chat {chat_id}: cannot reach Discord: {exc}") from exc
    except aiohttp.ClientError as exc:  # the connection broke after the request may have gone out
        raise DeliveryUncertain(f"chat {chat_id}: {exc!r}") from exc
    except OSError as exc:  # the image file is gone
        raise DeliveryError(f"chat {chat_id}: {exc}") from exc


class DiscordMessenger:
    platform = PLATFORM
    # The outbox keeps this many sends waiting for Discord's answer, so an upload's latency does not
    # set the pace; the limiters below still space the requests.
    max_in_flight = 4

    def __init__(
        self,
        client: discord.Client,
        *,
        dm_per_second: float = 5.0,
        global_per_second: float = GLOBAL_PER_SECOND,
        timeout: float = 60.0,
        mark_unreachable: MarkUnreachable | None = None,
    ) -> None:
        waits = client.http.max_ratelimit_timeout
        if waits is None or waits >= timeout:
            # discord.py would sit out a long 429 inside our timeout, and a send that never went out
            # would be taken for one that may have arrived.
            raise ValueError(f"give the client max_ratelimit_timeout below {timeout} s (it is {waits})")
        self.client = client
        self.rate_per_second = dm_per_second  # the outbox paces itself by it: most of what it sends are DMs
        self.timeout = timeout  # a request unanswered this long may have arrived: uncertain, never repeated
        self._requests = AsyncLimiter(global_per_second, 1.0)
        self._dms = AsyncLimiter(dm_per_second, 1.0)
        self._mark_unreachable = mark_unreachable
        self._blocked: set[str] = set()  # DM chats that answered 403, until the person interacts again
        self._dm_channels: OrderedDict[str, int] = OrderedDict()  # user id -> DM channel id
        self._pictures: OrderedDict[tuple[str, str], str | None] = OrderedDict()  # message -> attached file

    def reachable_again(self, chat_id: str) -> None:
        self._blocked.discard(chat_id)

    async def send(self, chat_id: str, reply: Reply) -> MessageRef:
        if chat_id in self._blocked:
            raise Unreachable(f"chat {chat_id} does not take messages from the bot")
        async with delivery_errors(chat_id, lambda: self._blocked_by(chat_id)):
            channel_id = await self._channel(chat_id)
            if is_dm(chat_id):
                await self._dms.acquire()
            parts = self._parts(reply)
            if reply.image is not None:
                parts["file"] = render.picture(reply)
            with handle_message_parameters(**parts) as params:
                message = await self._request(lambda: self.client.http.send_message(channel_id, params=params))
        ref = MessageRef(PLATFORM, chat_id, str(message["id"]))
        self._remember(ref, render.picture_name(reply))
        return ref

    async def edit(self, ref: MessageRef, reply: Reply) -> MessageRef:
        """Discord edits any message in place: a text can gain a picture and a post can lose it.
        `attachments` is left out when the message already shows this picture, so it stays."""
        async with delivery_errors(ref.chat_id, lambda: self._blocked_by(ref.chat_id)):
            channel_id = await self._channel(ref.chat_id)
            parts = self._parts(reply)
            wanted = render.picture_name(reply)
            if wanted is None:
                parts["attachments"] = []
            elif await self._shown(ref, channel_id) != wanted:
                parts["attachments"] = [render.picture(reply)]
            with handle_message_parameters(**parts) as params:
                await self._request(
                    lambda: self.client.http.edit_message(channel_id, int(ref.message_id), params=params)
                )
        self._remember(ref, wanted)
        return ref

    async def delete(self, ref: MessageRef) -> None:
        try:
            channel_id = await self._channel(ref.chat_id)
            await self._request(lambda: self.client.http.delete_message(channel_id, int(ref.message_id)))
        except (discord.HTTPException, TimeoutError) as exc:  # already gone: nothing more to do
            log.info("could not delete message %s in chat %s: %s", ref.message_id, ref.chat_id, exc)
        self._pictures.pop((ref.chat_id, ref.message_id), None)

    @staticmethod
    def _parts(reply: Reply) -> dict[str, Any]:
        return {
            "content": render.content(reply),
            "embed": render.embed(reply),
            "view": render.view(reply),
            "allowed_mentions": discord.AllowedMentions.none(),  # a prompt saying @everyone pings nobody
        }

    async def _request(self, call: Callable[[], Awaitable[Any]]) -> Any:
        await self._requests.acquire()
        async with asyncio.timeout(self.timeout):
            return await call()

    async def _channel(self, chat_id: str) -> int:
        """A channel id as it is; a person's DM channel, created on first use."""
        if not is_dm(chat_id):
            return int(chat_id)
        user_id = chat_id.removeprefix(DM_PREFIX)
        channel_id = self._dm_channels.get(user_id)
        if channel_id is None:
            channel = await self._request(lambda: self.client.http.start_private_message(int(user_id)))
            channel_id = int(channel["id"])
            self._dm_channels[user_id] = channel_id
            while len(self._dm_channels) > REMEMBERED:
                self._dm_channels.popitem(last=False)
        return channel_id

    async def _shown(self, ref: MessageRef, channel_id: int) -> str | None:
        """The file the message shows: remembered from our send, else asked of Discord."""
        key = (ref.chat_id, ref.message_id)
        if key in self._pictures:
            return self._pictures[key]
        message = await self._request(lambda: self.client.http.get_message(channel_id, int(ref.message_id)))
        attachments = message.get("attachments") or []
        return attachments[0]["filename"] if attachments else None

    def _remember(self, ref: MessageRef, picture: str | None) -> None:
        self._pictures[(ref.chat_id, ref.message_id)] = picture
        self._pictures.move_to_end((ref.chat_id, ref.message_id))
        while len(self._pictures) > REMEMBERED:
            self._pictures.popitem(last=False)

    async def _blocked_by(self, chat_id: str) -> None:
        if not is_dm(chat_id):
            return
        self._blocked.add(chat_id)
        if self._mark_unreachable is None:
            return
        try:
            await self._mark_unreachable(chat_id)
        except Exception:  # the send failed either way; the flag is set again on the next 403
            log.exception("could not mark chat %s unreachable", chat_id)
