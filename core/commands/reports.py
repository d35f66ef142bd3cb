"""/report for everyone; /reports, and the keep / remove decisions, for admins."""

from __future__ import annotations

from core import audit, gallery, posts, reports, safety
from core.cards import plural, preview_line
from core.commands.moderation import POST, REASON, require_admin
from core.commands.registry import Context, command
from core.errors import UserError
from core.models import Person
from core.replies import Button, Reply
from core.visibility import BANNED, REVIEW, VISIBLE


@command("report", "report a post that breaks the rules", params=(POST, REASON))
async def report(ctx: Context, post: int, reason: str | None) -> list[Reply]:
    found = await posts.visible_post(ctx.session, post, ctx.person)
    if found.author_id == ctx.person.id:
        raise UserError("You can't report your own post; /delete it instead.")
    settings = ctx.core.settings
    new = await reports.report(
        ctx.session, ctx.person, found, reason or "", settings.report_hide_threshold, settings.admin_list
    )
    if found.status == REVIEW:
        await gallery.withdraw(ctx.session, ctx.core.galleries, found.id)
    text = f"Thanks: an admin will look at #{found.id}." if new else f"You already reported #{found.id}."
    return [Reply(text=text, notice=ctx.via_button)]


@command("reports", "admins: open reports, oldest first")
async def list_reports(ctx: Context) -> list[Reply]:
    require_admin(ctx)
    waiting = await reports.open_reports(ctx.session)
    if not waiting:
        return [Reply(text="No open reports.")]
    replies = []
    for item in waiting:
        post = await posts.visible_post(ctx.session, item.post_id, ctx.person, admin=True, deleted=True)
        why = "; ".join(item.reasons) or "no reason given"
        text = f"🚩 {plural(item.count, 'report')} on {preview_line(post)} by @{item.author}: {why}"
        replies.append(Reply(text=text, buttons=(decision_buttons(item.post_id),), post_id=item.post_id))
    return replies


def decision_buttons(post_id: int) -> tuple[Button, ...]:
    return (Button(f"✅ Keep #{post_id}", f"keep {post_id}"), Button(f"🗑 Remove #{post_id}", f"remove {post_id}"))


@command("keep", "admins: keep a reported post and close its reports", params=(POST, REASON), hidden=True)
async def keep(ctx: Context, post: int, reason: str | None) -> list[Reply]:
    require_admin(ctx)
    found = await posts.visible_post(ctx.session, post, ctx.person, admin=True)
    if found.status == REVIEW:
        author = await ctx.session.get(Person, found.author_id)
        found.status = BANNED if author is not None and safety.is_banned(author) else VISIBLE
    await safety.resolve_reports(ctx.session, found.id)
    await audit.record(
        ctx.session,
        actor_id=ctx.person.id,
        action="keep",
        person_id=found.author_id,
        post_id=found.id,
        reason=reason or "",
    )
    return [Reply(text=f"Kept #{found.id}; its reports are closed.", notice=ctx.via_button)]


@command("remove", "admins: remove a reported post (restorable with /restore)", params=(POST, REASON), hidden=True)
async def remove(ctx: Context, post: int, reason: str | None) -> list[Reply]:
    require_admin(ctx)
    found = await posts.visible_post(ctx.session, post, ctx.person, admin=True)
    await safety.soft_delete(ctx.session, found)
    await gallery.withdraw(ctx.session, ctx.core.galleries, found.id)
    await safety.resolve_reports(ctx.session, found.id)
    await audit.record(
        ctx.session,
        actor_id=ctx.person.id,
        action="remove",
        person_id=found.author_id,
        post_id=found.id,
        reason=reason or "",
    )
    return [Reply(text=f"Removed #{found.id}. /restore {found.id} brings it back.", notice=ctx.via_button)]
