"""/comment, /comments, /uncomment."""

from __future__ import annotations

from core import comments, posts
from core.commands.registry import Context, command
from core.errors import UserError
from core.feed import notifications
from core.params import Param, ParamType
from core.replies import Ask, Reply

POST = Param("post", ParamType.POST, "the post's number, such as #12", required=True)
TEXT = Param("text", ParamType.TEXT, "what you want to say (without it, you are asked)")
BEFORE = Param("before", ParamType.INT, "older than this comment", min=1, hidden=True)
COMMENT = Param("comment", ParamType.WORD, "the comment's number, such as c42", required=True)


async def _moderate(ctx: Context, text: str) -> None:
    verdict = await ctx.core.moderator.check(text)
    if not verdict.allowed:
        raise UserError(verdict.reason.replace("Your prompt", "Your comment").replace("rephrase it", "reword it"))


@command(
    "comment",
    "comment on a post",
    params=(POST, TEXT),
    examples=("/comment #12 lovely colours!",),
)
async def comment(ctx: Context, post: int, text: str | None) -> list[Reply]:
    found = await posts.visible_post(ctx.session, post, ctx.person)
    if text is None:
        question = f"Your comment on #{found.id}?"
        return [Reply(text=question, ask=Ask(question, "comment", str(found.id), "a kind word"))]
    checked = comments.check_text(text)
    await comments.check_rate(ctx.session, ctx.person.id, ctx.core.settings.comments_per_minute)
    await _moderate(ctx, checked)
    made = await comments.add(ctx.session, found, ctx.person, checked)
    await notifications.record(
        ctx.session, recipient_id=found.author_id, actor_id=ctx.person.id, kind="comment", post_id=found.id
    )
    return [Reply(text=f"💬 Your comment c{made.id} is on #{found.id}.", post_id=found.id)]


@command("comments", "read a post's comments, newest first", params=(POST, BEFORE))
async def list_comments(ctx: Context, post: int, before: int | None) -> list[Reply]:
    found = await posts.visible_post(ctx.session, post, ctx.person)
    shown = await comments.page(ctx.session, found.id, before=before, limit=comments.PAGE_SIZE + 1)
    if not shown:
        empty = f"No {'older ' if before else ''}comments on #{found.id}. Write one: /comment {found.id} <text>"
        return [Reply(text=empty)]
    page, more = shown[: comments.PAGE_SIZE], len(shown) > comments.PAGE_SIZE
    return [comments.listing(found.id, page, more=more, title=f"💬 Comments on #{found.id} ({found.comment_count}):")]


@command("uncomment", "delete a comment (yours, or one under your post)", params=(COMMENT,))
async def uncomment(ctx: Context, comment: str) -> list[Reply]:
    comment_id = comments.parse_comment_id(comment)
    deleted = await comments.delete(ctx.session, comment_id, ctx.person, admin=ctx.is_admin)
    return [Reply(text=f"Deleted comment c{deleted.id} on #{deleted.post_id}.", notice=ctx.via_button)]
