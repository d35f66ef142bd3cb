"""/block, /unblock, /blocked: a blocked person's posts leave your feed, /top and digests, they
cannot follow, like, remix or comment on your posts, and they are not told."""

from __future__ import annotations

from sqlalchemy import delete, or_, select

from core import people
from core.commands.registry import Context, command
from core.db import insert_ignore, rowcount
from core.errors import UserError
from core.models import Block, Follow, Notification, Person
from core.params import Param, ParamType
from core.replies import Reply

LIST_LIMIT = 50


@command(
    "block",
    "block someone: they vanish from your feed, /top and digests",
    params=(Param("handle", ParamType.HANDLE, "who to block", required=True),),
)
async def block(ctx: Context, handle: str) -> list[Reply]:
    other = await people.by_handle(ctx.session, handle)
    if other.id == ctx.person.id:
        raise UserError("You can't block yourself.")
    me = ctx.person.id
    inserted = await ctx.session.execute(insert_ignore(ctx.session, Block, blocker_id=me, blocked_id=other.id))
    # A follow in either direction ends, and their news not yet told to you is dropped.
    await ctx.session.execute(
        delete(Follow).where(
            or_(
                (Follow.follower_id == me) & (Follow.followee_id == other.id),
                (Follow.follower_id == other.id) & (Follow.followee_id == me),
            )
        )
    )
    await ctx.session.execute(
        delete(Notification).where(
            Notification.recipient_id == me, Notification.actor_id == other.id, Notification.batched_at.is_(None)
        )
    )
    if rowcount(inserted) == 0:
        return [Reply(text=f"You already block @{other.handle}.", notice=ctx.via_button)]
    return [Reply(text=f"You blocked @{other.handle}. They are not told. /unblock @{other.handle} undoes it.")]


@command("unblock", "unblock someone", params=(Param("handle", ParamType.HANDLE, "who to unblock", required=True),))
async def unblock(ctx: Context, handle: str) -> list[Reply]:
    other = await people.by_handle(ctx.session, handle)
    removed = await ctx.session.execute(
        delete(Block).where(Block.blocker_id == ctx.person.id, Block.blocked_id == other.id)
    )
    if rowcount(removed) == 0:
        return [Reply(text=f"You don't block @{other.handle}.")]
    return [Reply(text=f"You unblocked @{other.handle}.")]


@command("blocked", "who you block")
async def blocked(ctx: Context) -> list[Reply]:
    handles = list(
        await ctx.session.scalars(
            select(Person.handle)
            .join(Block, Block.blocked_id == Person.id)
            .where(Block.blocker_id == ctx.person.id)
            .order_by(Person.handle)
            .limit(LIST_LIMIT)
        )
    )
    if not handles:
        return [Reply(text="You don't block anyone.")]
    return [Reply(text="You block:\n" + "\n".join(f"@{h}" for h in handles))]
