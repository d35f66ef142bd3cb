"""/verify: was this picture made here, by whom, from which prompt and parent?"""

from __future__ import annotations

import asyncio

from core import provenance
from core.commands.registry import Context, command
from core.errors import UserError
from core.models import Post
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
    claim = verdict.claim if verdict is not None else None
    post = await ctx.session.get(Post, claim.post) if claim is not None else None
    exists = post is not None and post.status != DELETED  # soft deletion keeps the row until the purge
    return [Reply(text=provenance.describe(verdict, exists), error=verdict is None)]
