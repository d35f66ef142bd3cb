"""Admin commands on posts: /hide and /restore (a removal or a deletion taken back)."""

from __future__ import annotations

from core import audit, posts, safety
from core.commands.registry import Context, command
from core.errors import UserError
from core.params import Param, ParamType
from core.replies import Reply
from core.visibility import DELETED, VISIBLE

ADMINS_ONLY = "Only admins can do that."

POST = Param("post", ParamType.POST, "the post's number, such as #12", required=True)
REASON = Param("reason", ParamType.TEXT, "why, for the audit trail")


def require_admin(ctx: Context) -> None:
    """The same plain line whether the command was typed or a (forged) button was pressed."""
    if not ctx.is_admin:
        raise UserError(ADMINS_ONLY)


@command("hide", "admins: take a post out of every public place", params=(POST, REASON))
async def hide(ctx: Context, post: int, reason: str | None) -> list[Reply]:
    require_admin(ctx)
    found = await posts.visible_post(ctx.session, post, ctx.person, admin=True)
    safety.hide(found)
    await safety.resolve_reports(ctx.session, found.id)
    await audit.record(
        ctx.session,
        actor_id=ctx.person.id,
        action="hide",
        person_id=found.author_id,
        post_id=found.id,
        reason=reason or "",
    )
    return [Reply(text=f"#{found.id} is hidden from every public place. /restore {found.id} brings it back.")]


@command("restore", "admins: bring back a hidden, removed or deleted post", params=(POST, REASON))
async def restore(ctx: Context, post: int, reason: str | None) -> list[Reply]:
    require_admin(ctx)
    found = await posts.visible_post(ctx.session, post, ctx.person, admin=True, deleted=True)
    if found.status == VISIBLE:
        return [Reply(text=f"#{found.id} is not hidden.")]
    was_deleted = found.status == DELETED
    await safety.restore(ctx.session, found)
    await audit.record(
        ctx.session,
        actor_id=ctx.person.id,
        action="restore",
        person_id=found.author_id,
        post_id=found.id,
        reason=reason or "",
    )
    return [Reply(text=f"#{found.id} is back{' (it had been deleted)' if was_deleted else ''}.")]
