"""A slash command's attachment option turned into the core's `Upload`. Discord says how big the
file is before it is fetched: one over UPLOAD_MAX_MB is not downloaded at all (the core refuses it by
that size), and the download itself stops one byte past the limit whatever the size claimed."""

from __future__ import annotations

import logging

import aiohttp
import discord

from core.params import Upload

log = logging.getLogger(__name__)

CHUNK = 64 * 1024
TIMEOUT = aiohttp.ClientTimeout(total=60, sock_connect=10)


class FetchFailed(Exception):
    """The file could not be fetched from Discord's CDN."""


async def fetch(attachment: discord.Attachment, limit_mb: float) -> Upload:
    limit = int(limit_mb * 1_000_000)
    if attachment.size > limit:
        return Upload(b"", attachment.filename, size=attachment.size)
    data = bytearray()
    try:
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session, session.get(attachment.url) as response:
            if response.status != 200:
                raise FetchFailed(f"the CDN answered {response.status}")
            async for chunk in response.content.iter_chunked(CHUNK):
                data += chunk
                if len(data) > limit:
                    break  # the core refuses it by this size: no need for the rest
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise FetchFailed(str(exc) or type(exc).__name__) from exc
    size = max(len(data), attachment.size) if len(data) > limit else None
    return Upload(bytes(data[: limit + 1]), attachment.filename, size=size)
