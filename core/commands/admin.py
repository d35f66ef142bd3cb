"""Operators' commands: /stats, /audit [handle], /admin add|remove <handle>."""

from __future__ import annotations

from core import audit, health, people, stats
from core.commands.moderation import require_admin
from core.commands.registry import Context, command
from core.errors import UserError
from core.params import Param, ParamType
from core.replies import Reply


@command("stats", "admins: today's numbers, the processes, the generation queue and the outbox backlog")
async def stats_(ctx: Context) -> list[Reply]:
    require_admin(ctx)
    today = await stats.report(ctx.session)
    deployment = health.render(await health.read(ctx.session))  # what `python -m bots status` prints
    return [Reply(text=f"{today}\n\n{deployment}")]


@command(
    "audit",
    "admins: the latest admin actions and moderation refusals",
    params=(Param("handle", ParamType.HANDLE, "only those by or about this person"),),
)
async def audit_(ctx: Context, handle: str | None) -> list[Reply]:
    require_admin(ctx)
    person = await people.by_handle(ctx.session, handle) if handle else None
    lines = await audit.latest(ctx.session, person.id if person else None)
    if not lines:
        return [Reply(text="Nothing in the audit trail yet.")]
    return [Reply(text="Audit trail, newest first:\n" + "\n".join(line.render() for line in lines))]


@command(
    "admin",
    "configured admins: make someone an admin, or no longer",
    params=(
        Param("action", ParamType.CHOICE, "add or remove", required=True, choices=("add", "remove")),
        Param("handle", ParamType.HANDLE, "who", required=True),
    ),
    examples=("/admin add @moderator", "/admin remove @moderator"),
)
async def admin(ctx: Context, action: str, handle: str) -> list[Reply]:
    require_admin(ctx)
    if not ctx.core.settings.is_admin(ctx.person.handle, ctx.actor.platform_id):
        raise UserError("Only the admins named in ADMINS can promote others.")
    target = await people.by_handle(ctx.session, handle)
    target.promoted_admin = action == "add"
    await audit.record(ctx.session, actor_id=ctx.person.id, action=f"admin {action}", person_id=target.id)
    if target.promoted_admin:
        return [Reply(text=f"@{target.handle} is now an admin.")]
    return [Reply(text=f"@{target.handle} is no longer an admin (unless ADMINS names them).")]
