"""/link and /unlink: one profile across platforms (the rules live in core.linking)."""

from __future__ import annotations

from core import linking, people
from core.commands.registry import Context, command
from core.errors import UserError
from core.models import Identity
from core.replies import Reply

PRIVATE_ONLY = "Send /link in a private chat with me, so that nobody else sees your code."


async def _identity(ctx: Context) -> Identity:
    identity = await people.find_identity(ctx.session, ctx.actor)
    assert identity is not None  # the core made it before running the command
    return identity


@command("link", "/link [code]", "join your accounts on two platforms into one profile")
async def link(ctx: Context, args: str) -> list[Reply]:
    if not ctx.actor.private:
        raise UserError(PRIVATE_ONLY)
    identity = await _identity(ctx)
    if not args.strip():
        code = await linking.create_code(ctx.session, ctx.person, identity)
        return [Reply(text=linking.code_message(code))]
    try:
        result = await linking.redeem(ctx.session, identity, args)
    except linking.LinkRefused as refused:
        return [Reply(text=str(refused))]  # a reply, not an error: the failed guess must be committed
    return [Reply(text=await linking.linked_message(ctx.session, result, identity))]


@command("unlink", "/unlink <platform>", "split one platform's account off your profile again")
async def unlink(ctx: Context, args: str) -> list[Reply]:
    words = args.split()
    if len(words) != 1:
        raise UserError("Usage: /unlink telegram (or discord, console)")
    return [Reply(text=await linking.unlink_message(ctx.session, ctx.person, await _identity(ctx), words[0].lower()))]
