"""Admin commands: /hide and /restore (a removal or a deletion taken back), /ban and /unban."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from core import audit, bans, gallery, people, posts, safety
from core.commands.registry import Context, command
from core.errors import UserError
from core.models import Post
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


Act = Callable[[Post], Awaitable[str | None]]


async def decide(
    ctx: Context, post_id: int, action: str, reason: str | None, act: Act, *, deleted: bool = False
) -> str | None:
    """An admin's decision on a post, always the same way: the post as an admin sees it (`deleted`:
    a deleted one too), `act` applied, the galleries brought in step, the post's open reports settled
    (an admin looked at it), and the decision in the audit trail. `act` returns the answer, or None
    when there was nothing to do; nothing is recorded then."""
    require_admin(ctx)
    found = await posts.visible_post(ctx.session, post_id, ctx.person, admin=True, deleted=deleted)
    was_listed = gallery.listed(found)
    answer = await act(found)
    if answer is None:
        return None
    await gallery.sync(ctx.session, ctx.core.galleries, found, was_listed)
    await safety.resolve_reports(ctx.session, found.id)
    await audit.record(
        ctx.session,
        actor_id=ctx.person.id,
        action=action,
        person_id=found.author_id,
        post_id=found.id,
        reason=reason or "",
    )
    return answer


@command("hide", "admins: take a post out of every public place", params=(POST, REASON))
async def hide(ctx: Context, post: int, reason: str | None) -> list[Reply]:
    async def act(found: Post) -> str:
        safety.hide(found)
        return f"#{found.id} is hidden from every public place. /restore {found.id} brings it back."

    return [Reply(text=await decide(ctx, post, "hide", reason, act) or "")]


@command("restore", "admins: bring back a hidden, removed or deleted post", params=(POST, REASON))
async def restore(ctx: Context, post: int, reason: str | None) -> list[Reply]:
    async def act(found: Post) -> str | None:
        if found.status == VISIBLE:
            return None
        was_deleted = found.status == DELETED
        await safety.restore(ctx.session, found)
        return f"#{found.id} is back{' (it had been deleted)' if was_deleted else ''}."

    return [Reply(text=await decide(ctx, post, "restore", reason, act, deleted=True) or f"#{post} is not hidden.")]


HANDLE = Param("handle", ParamType.HANDLE, "whose account", required=True)


@command(
    "ban",
    "admins: ban someone, for a while (30m, 12h, 7d, 2w) or for good",
    params=(
        HANDLE,
        Param("duration", ParamType.WORD, "how long: 30m, 12h, 7d, 2w; for good when left out"),
        REASON,
    ),
    examples=("/ban @spammer 7d flooding the gallery", "/ban @troll harassment"),
)
async def ban(ctx: Context, handle: str, duration: str | None, reason: str | None) -> list[Reply]:
    require_admin(ctx)
    target = await people.by_handle(ctx.session, handle)
    if target.id == ctx.person.id:
        raise UserError("You can't ban yourself.")
    length = bans.parse_duration(duration) if duration else None
    if duration and length is None:  # not a duration: the first word of the reason
        reason = f"{duration} {reason or ''}".strip()
    until = await bans.ban(ctx.session, ctx.person, target, length, reason or "", ctx.core.galleries)
    return [Reply(text=f"@{target.handle} is banned {bans.until_text(until)}. /unban @{target.handle} lifts it.")]


@command("unban", "admins: lift a ban", params=(HANDLE,))
async def unban(ctx: Context, handle: str) -> list[Reply]:
    require_admin(ctx)
    target = await people.by_handle(ctx.session, handle)
    if target.banned_until is None:
        return [Reply(text=f"@{target.handle} is not banned.")]
    await bans.unban(ctx.session, target, ctx.core.galleries, admin=ctx.person)
    return [Reply(text=f"@{target.handle} is no longer banned.")]
