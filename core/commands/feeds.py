"""/feed and /top."""

from __future__ import annotations

from core import cards
from core.commands.registry import Context, command
from core.feed.ranking import top_posts
from core.feed.timeline import feed_page
from core.params import Param, ParamType, UsageError
from core.replies import Button, Reply

CURSOR = (
    Param("direction", ParamType.CHOICE, "older or newer than the post", choices=("before", "after"), hidden=True),
    Param("post", ParamType.POST, "where the last page ended", hidden=True),
)


@command(
    "feed",
    "newest posts from the people you follow",
    params=CURSOR,
    examples=("/feed (then use the Older and Newer buttons)",),
    reads_only=True,
)
async def feed(ctx: Context, direction: str | None, post: int | None) -> list[Reply]:
    # Written by the Older and Newer buttons ("feed before 12"), never by people.
    if (direction is None) != (post is None):
        raise UsageError
    before, after = (post, None) if direction == "before" else (None, post)
    page = await feed_page(ctx.session, ctx.person.id, before=before, after=after)
    if not page.posts:
        if before is not None or after is not None:
            return [Reply(text="No more posts here. /feed starts again from the newest.")]
        return [Reply(text="Your feed is empty. Follow people with /follow @handle, or see /top.")]
    replies = [cards.card(view, ctx.core.media, viewer_id=ctx.viewer_id) for view in page.posts]
    nav: list[Button] = []
    if page.newer is not None:
        nav.append(Button("◀ Newer", f"feed after {page.newer}"))
    if page.older is not None:
        nav.append(Button("Older ▶", f"feed before {page.older}"))
    if nav:
        replies.append(Reply(text="More from the people you follow:", buttons=(tuple(nav),)))
    return replies


@command("top", "the most liked posts of the last 24 hours", reads_only=True)
async def top(ctx: Context) -> list[Reply]:
    views = await top_posts(ctx.session, viewer_id=ctx.person.id)
    if not views:
        return [Reply(text="Nothing posted in the last 24 hours yet. Be the first: /imagine <prompt>")]
    return [cards.card(view, ctx.core.media, viewer_id=ctx.viewer_id) for view in views]
