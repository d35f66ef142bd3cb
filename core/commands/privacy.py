"""/private on|off for the whole profile, and the follow requests it brings: /approve, /decline."""

from __future__ import annotations

from sqlalchemy import delete, select, update

from core import gallery, people, social, visibility
from core.commands.registry import Context, command
from core.db import insert_ignore, rowcount
from core.feed import notifications
from core.models import FollowRequest, Person, Post
from core.params import Param, ParamType
from core.replies import Button, Reply

REQUESTS_SHOWN = 10


async def ask_to_follow(ctx: Context, owner: Person) -> Reply:
    """Following a private profile is a request its owner approves or declines."""
    if await visibility.blocked_between(ctx.session, ctx.person.id, owner.id):
        return Reply(text=f"You can't follow @{owner.handle}.", notice=ctx.via_button, error=True)
    inserted = await ctx.session.execute(
        insert_ignore(ctx.session, FollowRequest, follower_id=ctx.person.id, followee_id=owner.id)
    )
    if rowcount(inserted) == 1:
        await notifications.record(ctx.session, recipient_id=owner.id, actor_id=ctx.person.id, kind="request")
    return Reply(
        text=f"@{owner.handle}'s profile is private: you asked to follow, and they decide.", notice=ctx.via_button
    )


def _request_buttons(handle: str) -> tuple[Button, ...]:
    return (Button(f"✅ Approve @{handle}", f"approve {handle}"), Button(f"✖ Decline @{handle}", f"decline {handle}"))


@command(
    "private",
    "make your whole profile private (only approved followers see your posts), or public",
    params=(Param("state", ParamType.CHOICE, "on or off; left out, shows it", choices=("on", "off")),),
)
async def private(ctx: Context, state: str | None) -> list[Reply]:
    me = ctx.person
    if state is not None and me.private != (state == "on"):
        me.private = state == "on"
        mine, galleries = Post.author_id == me.id, ctx.core.galleries
        if me.private:
            await gallery.unlisting(ctx.session, galleries, mine)
        # Existing posts follow the profile at once (the copy on each post keeps /top's filter on posts alone).
        await ctx.session.execute(update(Post).where(mine).values(author_private=me.private))
        if not me.private:
            await gallery.relisting(ctx.session, galleries, mine)
            await _approve_all(ctx)
    if not me.private:
        return [Reply(text="Your profile is public: everyone sees your public posts. /private on to change it.")]
    waiting = list(
        await ctx.session.scalars(
            select(Person.handle)
            .join(FollowRequest, FollowRequest.follower_id == Person.id)
            .where(FollowRequest.followee_id == me.id)
            .order_by(FollowRequest.created_at)
            .limit(REQUESTS_SHOWN)
        )
    )
    text = "Your profile is private: only the followers you approve see your posts. /private off to change it."
    if waiting:
        text += "\nAsking to follow you: " + ", ".join(f"@{h}" for h in waiting)
    return [Reply(text=text, buttons=tuple(_request_buttons(h) for h in waiting))]


async def _approve_all(ctx: Context) -> None:
    """A profile made public has nothing to approve: whoever asked now follows."""
    asked = list(
        await ctx.session.scalars(select(FollowRequest.follower_id).where(FollowRequest.followee_id == ctx.person.id))
    )
    for follower_id in asked:
        follower = await ctx.session.get(Person, follower_id)
        if follower is not None:
            await social.follow(ctx.session, follower, ctx.person)
    await ctx.session.execute(delete(FollowRequest).where(FollowRequest.followee_id == ctx.person.id))


async def _take_request(ctx: Context, handle: str) -> Person | None:
    other = await people.by_handle(ctx.session, handle)
    taken = await ctx.session.execute(
        delete(FollowRequest).where(FollowRequest.follower_id == other.id, FollowRequest.followee_id == ctx.person.id)
    )
    return other if rowcount(taken) == 1 else None


WHO = Param("handle", ParamType.HANDLE, "who asked to follow you", required=True)


@command("approve", "let someone who asked follow your private profile", params=(WHO,))
async def approve(ctx: Context, handle: str) -> list[Reply]:
    other = await _take_request(ctx, handle)
    if other is None:
        return [Reply(text=f"@{handle.removeprefix('@')} has not asked to follow you.", notice=ctx.via_button)]
    if await social.follow(ctx.session, other, ctx.person):
        await notifications.record(ctx.session, recipient_id=other.id, actor_id=ctx.person.id, kind="accepted")
    return [Reply(text=f"@{other.handle} now follows you.", notice=ctx.via_button)]


@command("decline", "turn down a request to follow your private profile", params=(WHO,))
async def decline(ctx: Context, handle: str) -> list[Reply]:
    other = await _take_request(ctx, handle)
    if other is None:
        return [Reply(text=f"@{handle.removeprefix('@')} has not asked to follow you.", notice=ctx.via_button)]
    return [Reply(text=f"You declined @{other.handle}'s request. They are not told.", notice=ctx.via_button)]
