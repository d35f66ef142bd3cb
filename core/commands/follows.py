"""/follow, /unfollow, /following, /followers."""

from __future__ import annotations

from core import people, social
from core.commands import privacy
from core.commands.registry import Context, command
from core.errors import UserError
from core.feed import notifications
from core.params import Param, ParamType
from core.replies import Reply


def _who(description: str) -> Param:
    return Param("handle", ParamType.HANDLE, description, required=True)


@command("follow", "follow someone to see their posts in /feed", params=(_who("who to follow"),))
async def follow(ctx: Context, handle: str) -> list[Reply]:
    other, blocked = await people.by_handle_for(ctx.session, handle, ctx.person)
    if blocked:  # the viewer blocks them (someone who blocks the viewer is nobody to them)
        raise UserError(f"You block @{other.handle}: /unblock @{other.handle} first.")
    if other.private and not await social.is_following(ctx.session, ctx.person.id, other.id):
        return [await privacy.ask_to_follow(ctx, other)]
    if await social.follow(ctx.session, ctx.person, other, blocked=blocked):
        await notifications.record(ctx.session, recipient_id=other.id, actor_id=ctx.person.id, kind="follow")
        message = f"You now follow @{other.handle}. Their new posts will show up in /feed."
    else:
        message = f"You already follow @{other.handle}."
    return [Reply(text=message, notice=ctx.via_button)]


@command("unfollow", "stop following someone", params=(_who("who to stop following"),))
async def unfollow(ctx: Context, handle: str) -> list[Reply]:
    other = await people.by_handle(ctx.session, handle)
    if await social.unfollow(ctx.session, ctx.person, other):
        await notifications.withdraw(
            ctx.session, recipient_id=other.id, actor_id=ctx.person.id, kind="follow", post_id=None
        )
        message = f"You no longer follow @{other.handle}."
    else:
        message = f"You don't follow @{other.handle}."
    return [Reply(text=message, notice=ctx.via_button)]


def _listing(title: str, handles: list[str], total: int, empty: str) -> Reply:
    if not handles:
        return Reply(text=empty)
    more = f"\n…and {total - len(handles)} more" if total > len(handles) else ""
    return Reply(text=f"{title} ({total}):\n" + "\n".join(f"@{h}" for h in handles) + more)


@command("following", "who you follow")
async def following(ctx: Context) -> list[Reply]:
    handles = await social.following(ctx.session, ctx.person)
    _, total = await social.follow_counts(ctx.session, ctx.person.id)
    return [_listing("You follow", handles, total, "You don't follow anyone yet. Try /follow @handle.")]


@command("followers", "who follows you")
async def followers(ctx: Context) -> list[Reply]:
    handles = await social.followers(ctx.session, ctx.person)
    total, _ = await social.follow_counts(ctx.session, ctx.person.id)
    return [_listing("Your followers", handles, total, "Nobody follows you yet. Share your best work!")]
