"""/feed and /top."""

from __future__ import annotations

from core import cards, posts
from core.commands.registry import Context, command
from core.errors import UserError
from core.feed.ranking import top_posts
from core.feed.timeline import feed_page
from core.replies import Button, Reply


def _cursor(args: str) -> tuple[int | None, int | None]:
    parts = args.split()
    if not parts:
        return None, None
    if len(parts) == 2 and parts[0] in {"before", "after"}:
        value = posts.parse_post_id(parts[1])  # ASCII digits that fit a post id, or a clear error
        return (value, None) if parts[0] == "before" else (None, value)
    raise UserError("Usage: /feed (then use the Older and Newer buttons)")


@command("feed", "/feed", "newest posts from the people you follow")
async def feed(ctx: Context, args: str) -> list[Reply]:
    before, after = _cursor(args)
    page = await feed_page(ctx.session, ctx.person.id, before=before, after=after)
    if not page.posts:
        if before is not None or after is not None:
            return [Reply(text="No more posts here. /feed starts again from the newest.")]
        return [Reply(text="Your feed is empty. Follow people with /follow @handle, or see /top.")]
    replies = [cards.card(view, ctx.core.media) for view in await cards.views(ctx.session, page.posts)]
    nav: list[Button] = []
    if page.newer is not None:
        nav.append(Button("◀ Newer", f"feed after {page.newer}"))
    if page.older is not None:
        nav.append(Button("Older ▶", f"feed before {page.older}"))
    if nav:
        replies.append(Reply(text="More from the people you follow:", buttons=(tuple(nav),)))
    return replies


@command("top", "/top", "the most liked posts of the last 24 hours")
async def top(ctx: Context, args: str) -> list[Reply]:
    posts = await top_posts(ctx.session)
    if not posts:
        return [Reply(text="Nothing posted in the last 24 hours yet. Be the first: /imagine <prompt>")]
    return [cards.card(view, ctx.core.media) for view in await cards.views(ctx.session, posts)]
