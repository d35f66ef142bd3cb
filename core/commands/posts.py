"""/imagine, /remix, /vary, /like, /post, /delete."""

from __future__ import annotations

from core import cards, gallery, posts
from core.commands.generation import request_image
from core.commands.registry import Context, command
from core.errors import UserError
from core.feed import notifications
from core.gen.sizes import aspect_of
from core.prompts import ImagineOptions, parse_imagine
from core.replies import Ask, Reply


def _post_and_rest(args: str, usage: str) -> tuple[int, str]:
    parts = args.split(maxsplit=1)
    if not parts:
        raise UserError(f"Usage: {usage}")
    return posts.parse_post_id(parts[0]), parts[1] if len(parts) > 1 else ""


@command("imagine", "/imagine <prompt>", "create an image and post it (--ar 16:9, --seed 42, --private)")
async def imagine(ctx: Context, args: str) -> list[Reply]:
    options = parse_imagine(args, ctx.core.settings.prompt_max_chars)
    return await request_image(ctx, options)


@command("remix", "/remix <post> <prompt>", "make your own take on a post, crediting its author")
async def remix(ctx: Context, args: str) -> list[Reply]:
    post_id, rest = _post_and_rest(args, "/remix #12 <prompt>")
    parent = await posts.visible_post(ctx.session, post_id, ctx.person)
    if not rest.strip():
        question = f"Describe your remix of #{parent.id} (the original: {cards.preview_line(parent)})"
        return [Reply(text=question, ask=Ask(question, "remix", str(parent.id), parent.prompt[:100]))]
    options = parse_imagine(rest, ctx.core.settings.prompt_max_chars, "/remix #12 <prompt>")
    return await request_image(ctx, options, parent)


@command("vary", "/vary <post>", "the same prompt with a new seed, as a new post", hidden=True)
async def vary(ctx: Context, args: str) -> list[Reply]:
    post_id, _ = _post_and_rest(args, "/vary #12")
    parent = await posts.visible_post(ctx.session, post_id, ctx.person)
    aspect = aspect_of(parent.width, parent.height)
    return await request_image(ctx, ImagineOptions(parent.prompt, aspect, private=not parent.is_public), parent)


@command("like", "/like <post>", "like a post, or take your like back")
async def like(ctx: Context, args: str) -> list[Reply]:
    post_id, _ = _post_and_rest(args, "/like #12")
    post = await posts.visible_post(ctx.session, post_id, ctx.person)
    liked = await posts.toggle_like(ctx.session, ctx.person, post)
    notify = notifications.record if liked else notifications.withdraw
    await notify(ctx.session, recipient_id=post.author_id, actor_id=ctx.person.id, kind="like", post_id=post.id)
    await gallery.refresh_later(ctx.session, ctx.core.galleries, post.id, ctx.core.settings.gallery_refresh_seconds)
    message = f"{'❤️ You liked' if liked else 'You took back your like on'} #{post.id} ({post.like_count} ❤️)"
    if not ctx.via_button:
        return [Reply(text=message, post_id=post.id)]
    [view] = await cards.views(ctx.session, [post])
    return [Reply(text=message, notice=True), cards.card(view, ctx.core.media, edit=True)]


@command("post", "/post <id>", "show one post")
async def show(ctx: Context, args: str) -> list[Reply]:
    post_id, _ = _post_and_rest(args, "/post #12")
    post = await posts.visible_post(ctx.session, post_id, ctx.person)
    [view] = await cards.views(ctx.session, [post])
    return [cards.card(view, ctx.core.media)]


@command("delete", "/delete <post>", "delete one of your posts")
async def delete(ctx: Context, args: str) -> list[Reply]:
    post_id, _ = _post_and_rest(args, "/delete #12")
    post = await posts.visible_post(ctx.session, post_id, ctx.person, admin=ctx.is_admin)
    if post.author_id != ctx.person.id and not ctx.is_admin:
        raise UserError(f"#{post.id} is not yours to delete.")
    path = post.image_path
    if await posts.delete_post(ctx.session, post):
        ctx.after_commit.append(lambda: ctx.core.media.delete(path))
    return [Reply(text=f"Deleted #{post_id}.")]
