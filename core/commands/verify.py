"""/verify: was this picture made here, by whom, from which prompt and parent?"""

from __future__ import annotations

import asyncio

from core import provenance, sent_files
from core.commands.registry import Context, command
from core.errors import UserError
from core.models import Person, Post
from core.params import Param, ParamType, Upload
from core.replies import Reply
from core.visibility import DELETED

IMAGE = Param(
    "image",
    ParamType.IMAGE,
    "the picture to check, sent as a file",
    required=True,
    missing="Send the picture as a file with /verify as its caption (or reply to it with /verify).",
)


@command("verify", "check whether a picture was made here, by whom and from what", params=(IMAGE,))
async def verify(ctx: Context, image: Upload) -> list[Reply]:
    limit = ctx.core.settings.upload_max_mb
    if image.total_size > limit * 1_000_000:
        raise UserError(f"That picture is {image.total_size / 1_000_000:.1f} MB; the limit is {limit:g} MB.")
    verdict = await asyncio.to_thread(ctx.core.signer.verify, image.data)
    if verdict is not None and verdict.claim is None:  # no signature: perhaps re-encoded on the way
        unsigned = await _unsigned(ctx, image)
        if unsigned is not None:
            return [unsigned]
    claim = verdict.claim if verdict is not None else None
    post = await ctx.session.get(Post, claim.post) if claim is not None else None
    exists = post is not None and post.status != DELETED  # soft deletion keeps the row until the purge
    return [Reply(text=provenance.describe(verdict, exists), error=verdict is None)]


async def _unsigned(ctx: Context, image: Upload) -> Reply | None:
    """A picture without a signature that the platform re-encoded: the very file we sent, known by the
    platform's id for it, or a suggestion to send it as a file. None when it came as it was made."""
    platform = ctx.actor.platform.title()
    post_id = None
    if image.fingerprint is not None:
        post_id = await sent_files.post_of(ctx.session, ctx.actor.platform, image.fingerprint)
    if post_id is not None:
        post = await ctx.session.get(Post, post_id)
        author = await ctx.session.get(Person, post.author_id) if post is not None else None
        if post is not None and author is not None:
            return Reply(text=provenance.describe_sent(post, author.handle, platform))
    if image.recompressed:
        return Reply(text=provenance.recompressed(platform), error=True)
    return None
