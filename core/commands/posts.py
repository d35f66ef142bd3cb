"""/imagine, /remix, /vary, /like, /post, /delete."""

from __future__ import annotations

from core import audit, cards, comments, gallery, lineage, posts, safety, uploads
from core.commands.generation import request_image
from core.commands.registry import Context, command
from core.errors import UserError
from core.feed import notifications
from core.gen.sizes import aspect_of
from core.params import Param, ParamType, Upload
from core.prompts import IMAGE_OPTIONS, ImagineOptions, check_prompt
from core.replies import Ask, Reply

POST = Param("post", ParamType.POST, "the post's number, such as #12", required=True)
PROMPT = Param(
    "prompt",
    ParamType.TEXT,
    "what the image shows",
    required=True,
    missing="Describe the image you want, for example: /imagine a red fox in the snow",
)
REMIX_PROMPT = Param("prompt", ParamType.TEXT, "your take on it (without one, you are asked)")


@command("imagine", "create an image and post it", params=(PROMPT, *IMAGE_OPTIONS))
async def imagine(ctx: Context, prompt: str, aspect: str | None, seed: int | None, private: bool) -> list[Reply]:
    checked = check_prompt(prompt, ctx.core.settings.prompt_max_chars)
    return await request_image(ctx, ImagineOptions.of(checked, aspect, seed, private))


@command("remix", "make your own take on a post, crediting its author", params=(POST, REMIX_PROMPT, *IMAGE_OPTIONS))
async def remix(
    ctx: Context, post: int, prompt: str | None, aspect: str | None, seed: int | None, private: bool
) -> list[Reply]:
    parent = await posts.visible_post(ctx.session, post, ctx.person)
    if prompt is None and aspect is None and seed is None and not private:
        question = f"Describe your remix of #{parent.id} (the original: {cards.preview_line(parent)})"
        return [Reply(text=question, ask=Ask(question, "remix", str(parent.id), parent.prompt[:100]))]
    checked = check_prompt(prompt or "", ctx.core.settings.prompt_max_chars, "/remix #12 <prompt>")
    # It starts from the parent's picture, so it keeps the parent's shape unless asked otherwise.
    shape = aspect or aspect_of(parent.width, parent.height)
    return await request_image(ctx, ImagineOptions.of(checked, shape, seed, private), parent)


PHOTO = Param(
    "photo",
    ParamType.IMAGE,
    "your picture to start from",
    required=True,
    missing="Send a photo with /edit <prompt> as its caption (or reply to a photo with /edit <prompt>).",
)


@command(
    "edit",
    "make a new post from your own photo",
    params=(PHOTO, PROMPT, *IMAGE_OPTIONS),
)
async def edit(
    ctx: Context, photo: Upload, prompt: str, aspect: str | None, seed: int | None, private: bool
) -> list[Reply]:
    picture = await uploads.check(photo, limit_mb=ctx.core.settings.upload_max_mb, moderator=ctx.core.moderator)
    checked = check_prompt(prompt, ctx.core.settings.prompt_max_chars, "/edit <prompt>")
    shape = aspect or aspect_of(picture.width, picture.height)
    media = ctx.core.media
    name = media.name_for(picture.data, picture.extension)
    fresh = not media.path(name).exists()
    await media.save(picture.data, picture.extension)
    try:
        return await request_image(ctx, ImagineOptions.of(checked, shape, seed, private), upload=name)
    except Exception:
        if fresh:  # refused after all (quota, moderation): nothing of it stays
            await media.delete(name)
        raise


@command("vary", "the same prompt with a new seed, as a new post", params=(POST,), hidden=True)
async def vary(ctx: Context, post: int) -> list[Reply]:
    parent = await posts.visible_post(ctx.session, post, ctx.person)
    aspect = aspect_of(parent.width, parent.height)
    return await request_image(ctx, ImagineOptions(parent.prompt, aspect, private=not parent.is_public), parent)


@command("like", "like a post, or take your like back", params=(POST,))
async def like(ctx: Context, post: int) -> list[Reply]:
    view = await posts.visible_view(ctx.session, post, ctx.person)
    found = view.post
    liked = await posts.toggle_like(ctx.session, ctx.person, found)
    notify = notifications.record if liked else notifications.withdraw
    await notify(ctx.session, recipient_id=found.author_id, actor_id=ctx.person.id, kind="like", post_id=found.id)
    await gallery.refresh_later(ctx.session, ctx.core.galleries, found, ctx.core.settings.gallery_refresh_seconds)
    message = f"{'❤️ You liked' if liked else 'You took back your like on'} #{found.id} ({found.like_count} ❤️)"
    if not ctx.via_button:
        return [Reply(text=message, post_id=found.id)]
    return [Reply(text=message, notice=True), cards.card(view, ctx.core.media, edit=True, viewer_id=ctx.viewer_id)]


@command("post", "show one post", params=(POST,), reads_only=True)
async def show(ctx: Context, post: int) -> list[Reply]:
    view = await posts.visible_view(ctx.session, post, ctx.person)
    found = view.post
    shown = await comments.page(ctx.session, found.id, before=None, limit=comments.LATEST_ON_POST + 1)
    shown_card = cards.card(view, ctx.core.media, viewer_id=ctx.viewer_id)
    if not shown:
        return [shown_card]
    latest, more = shown[: comments.LATEST_ON_POST], len(shown) > comments.LATEST_ON_POST
    title = f"💬 Latest comments on #{found.id} ({found.comment_count}):"
    return [shown_card, comments.listing(found.id, latest, more=more, title=title)]


@command(
    "lineage", "a post's ancestors back to the original, and its most liked remixes", params=(POST,), reads_only=True
)
async def lineage_of(ctx: Context, post: int) -> list[Reply]:
    view = await posts.visible_view(ctx.session, post, ctx.person)
    found = view.post
    up = await lineage.chain(ctx.session, found, ctx.person)
    down = await lineage.top_remixes(ctx.session, found, ctx.person)
    return [lineage.reply(found, view.author, up, down)]


@command("delete", "delete one of your posts", params=(POST,))
async def delete(ctx: Context, post: int) -> list[Reply]:
    found = await posts.visible_post(ctx.session, post, ctx.person, admin=ctx.is_admin)
    if found.author_id != ctx.person.id and not ctx.is_admin:
        raise UserError(f"#{found.id} is not yours to delete.")
    was_listed = gallery.listed(found)
    await safety.soft_delete(ctx.session, found)
    await gallery.sync(ctx.session, ctx.core.galleries, found, was_listed)
    if found.author_id != ctx.person.id:
        await audit.record(
            ctx.session, actor_id=ctx.person.id, action="delete", person_id=found.author_id, post_id=post
        )
    return [Reply(text=f"Deleted #{post}.")]
