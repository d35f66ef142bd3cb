"""/start, /help, /profile, /name, /bio."""

from __future__ import annotations

from core import linking, people, posts, social
from core.cards import plural, preview_line
from core.commands.registry import Context, command, listed
from core.models import Person
from core.replies import Button, Reply


@command("start", "/start", "create your profile and see how it works")
async def start(ctx: Context, args: str) -> list[Reply]:
    greeting = f"Welcome, @{ctx.person.handle}!"
    return [
        Reply(
            text=f"{greeting} This is a social network of AI images.\n"
            "Create one with /imagine a red fox in the snow, follow people with /follow @handle, "
            "and see their work in /feed. /help lists everything."
        )
    ]


@command("help", "/help", "list the commands")
async def help_(ctx: Context, args: str) -> list[Reply]:
    lines = [f"{c.usage} — {c.summary}" for c in listed()]
    return [Reply(text="Commands:\n" + "\n".join(lines))]


@command("name", "/name <text>", "set your display name")
async def name(ctx: Context, args: str) -> list[Reply]:
    people.set_display_name(ctx.person, args)
    return [Reply(text=f"Your name is now {ctx.person.display_name}.")]


@command("bio", "/bio <text>", "set your bio (empty clears it)")
async def bio(ctx: Context, args: str) -> list[Reply]:
    people.set_bio(ctx.person, args)
    return [Reply(text="Your bio is updated." if ctx.person.bio else "Your bio is cleared.")]


@command("profile", "/profile [handle]", "show a profile (yours without a handle)")
async def profile(ctx: Context, args: str) -> list[Reply]:
    person = await people.by_handle(ctx.session, args) if args.strip() else ctx.person
    return [await profile_reply(ctx, person)]


async def profile_reply(ctx: Context, person: Person) -> Reply:
    own = person.id == ctx.person.id
    post_count, likes = await posts.author_stats(ctx.session, person.id, include_private=own)
    followers, following = await social.follow_counts(ctx.session, person.id)
    latest = await posts.latest_posts(ctx.session, person.id, include_private=own)
    lines = [f"{person.display_name} (@{person.handle})"]
    if person.bio:
        lines.append(person.bio)
    counts = (plural(post_count, "post"), plural(followers, "follower"), f"{following} following")
    lines.append(" · ".join(counts) + f" · {plural(likes, 'like')} received")
    lines.append("On: " + ", ".join(linking.platform_name(p) for p in await linking.platforms(ctx.session, person.id)))
    if latest:
        lines.append("Latest:")
        lines.extend(preview_line(p) for p in latest)
    else:
        lines.append("No posts yet." + (" Try /imagine <prompt>." if own else ""))
    buttons = [Button(f"#{p.id}", f"post {p.id}") for p in latest]
    rows: list[tuple[Button, ...]] = [tuple(buttons)] if buttons else []
    if not own:
        rows.append((Button(f"➕ Follow @{person.handle}", f"follow {person.handle}"),))
    return Reply(text="\n".join(lines), buttons=tuple(rows))
