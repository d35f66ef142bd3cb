"""/link and /unlink: one profile across platforms (the rules live in core.linking)."""

from __future__ import annotations

from core import linking, people
from core.commands.registry import Context, command
from core.errors import UserError
from core.models import Identity
from core.params import Param, ParamType
from core.replies import Reply

PLATFORMS = ("telegram", "discord", "console")
PRIVATE_ONLY = "Send /link in a private chat with me, so that nobody else sees your code."


async def _identity(ctx: Context) -> Identity:
    identity = await people.find_identity(ctx.session, ctx.actor)
    assert identity is not None  # the core made it before running the command
    return identity


@command(
    "link",
    "join your accounts on two platforms into one profile",
    params=(Param("code", ParamType.TEXT, "the code /link gave you on your other platform"),),
)
async def link(ctx: Context, code: str | None = None) -> list[Reply]:
    if not ctx.actor.private:
        raise UserError(PRIVATE_ONLY)
    identity = await _identity(ctx)
    if not (code or "").strip():
        fresh = await linking.create_code(ctx.session, ctx.person, identity)
        return [Reply(text=linking.code_message(fresh))]
    try:
        result = await linking.redeem(ctx.session, identity, code or "")
    except linking.LinkRefused as refused:
        return [Reply(text=str(refused))]  # a reply, not an error: the failed guess must be committed
    return [Reply(text=await linking.linked_message(ctx.session, result, identity))]


@command(
    "unlink",
    "split one platform's account off your profile again",
    params=(Param("platform", ParamType.CHOICE, "the account to split off", required=True, choices=PLATFORMS),),
)
async def unlink(ctx: Context, platform: str) -> list[Reply]:
    message = await linking.unlink_message(
        ctx.session, ctx.person, await _identity(ctx), platform.lower(), ctx.core.settings.admin_list
    )
    return [Reply(text=message)]
