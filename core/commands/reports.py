"""/report for everyone; /reports, and the keep / remove decisions, for admins."""

from __future__ import annotations

from core import gallery, posts, reports, safety
from core.cards import plural, preview_line
from core.commands.moderation import POST, REASON, decide, require_admin
from core.commands.registry import Context, command
from core.errors import UserError
from core.models import Post
from core.replies import Button, Reply
from core.visibility import REVIEW


@command("report", "report a post that breaks the rules", params=(POST, REASON))
async def report(ctx: Context, post: int, reason: str | None) -> list[Reply]:
    found = await posts.visible_post(ctx.session, post, ctx.person)
    if found.author_id == ctx.person.id:
        raise UserError("You can't report your own post; /delete it instead.")
    settings = ctx.core.settings
    was_listed = gallery.listed(found)
    new = await reports.report(
        ctx.session, ctx.person, found, reason or "", settings.report_hide_threshold, settings.admin_list
    )
    await gallery.sync(ctx.session, ctx.core.galleries, found, was_listed)
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
    async def act(found: Post) -> str:
        if found.status == REVIEW:  # back where it was: visible, or held back while its author is banned
            await safety.restore(ctx.session, found)
        return f"Kept #{found.id}; its reports are closed."

    return [Reply(text=await decide(ctx, post, "keep", reason, act) or "", notice=ctx.via_button)]


@command("remove", "admins: remove a reported post (restorable with /restore)", params=(POST, REASON), hidden=True)
async def remove(ctx: Context, post: int, reason: str | None) -> list[Reply]:
    async def act(found: Post) -> str:
        await safety.soft_delete(ctx.session, found)
        return f"Removed #{found.id}. /restore {found.id} brings it back."

    return [Reply(text=await decide(ctx, post, "remove", reason, act) or "", notice=ctx.via_button)]
