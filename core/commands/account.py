"""/start, /help, /profile, /name, /bio."""

from __future__ import annotations

from core import linking, people, posts, social, visibility
from core.cards import plural, preview_line
from core.commands.registry import COMMANDS, Command, Context, command, listed
from core.errors import UserError
from core.models import Person
from core.params import Param, ParamType
from core.replies import Button, Reply


@command("start", "create your profile and see how it works")
async def start(ctx: Context) -> list[Reply]:
    greeting = f"Welcome, @{ctx.person.handle}!"
    return [
        Reply(
            text=f"{greeting} This is a social network of AI images.\n"
            "Create one with /imagine a red fox in the snow, follow people with /follow @handle, "
            "and see their work in /feed. /help lists everything."
        )
    ]


@command(
    "help",
    "list the commands, or explain one",
    params=(Param("command", ParamType.WORD, "a command to explain, such as imagine"),),
)
async def help_(ctx: Context, command: str | None) -> list[Reply]:
    if command is None:
        lines = [f"{c.usage} — {c.summary}" for c in listed()]
        return [Reply(text="Commands:\n" + "\n".join(lines) + "\nSend /help <command> for its details.")]
    found = COMMANDS.get(command.removeprefix("/").split("@", 1)[0].lower())
    if found is None:
        raise UserError(f"There is no command /{command.removeprefix('/')}. Send /help to see them all.")
    return [Reply(text=explain(found))]


def explain(found: Command) -> str:
    """A command's usage, summary and, one per line, each parameter a person may write."""
    lines = [f"{found.usage} — {found.summary}"]
    for param in found.params:
        if param.hidden:
            continue
        written = param.flags[0] if param.is_option else param.name
        extra = f" ({', '.join(param.choices)})" if param.choices and param.is_option else ""
        lines.append(f"  {written}: {param.description}{extra}")
    lines.extend(f"Example: {example}" for example in found.examples)
    return "\n".join(lines)


@command(
    "name",
    "set your display name",
    params=(
        Param(
            "text",
            ParamType.TEXT,
            "the name others see",
            required=True,
            missing="Give a name, for example: /name Ada Lovelace",
        ),
    ),
)
async def name(ctx: Context, text: str) -> list[Reply]:
    people.set_display_name(ctx.person, text)
    return [Reply(text=f"Your name is now {ctx.person.display_name}.")]


@command("bio", "set your bio (empty clears it)", params=(Param("text", ParamType.TEXT, "a few words about you"),))
async def bio(ctx: Context, text: str | None) -> list[Reply]:
    people.set_bio(ctx.person, text or "")
    return [Reply(text="Your bio is updated." if ctx.person.bio else "Your bio is cleared.")]


@command(
    "profile",
    "show a profile (yours without a handle)",
    params=(Param("handle", ParamType.HANDLE, "whose profile; yours when left out"),),
    reads_only=True,
)
async def profile(ctx: Context, handle: str | None) -> list[Reply]:
    if handle is None:
        return [await profile_reply(ctx, ctx.person, blocked=False)]
    person, blocked, counts = await social.profile_by_handle(ctx.session, handle, ctx.person)
    # Counted as others see it; one's own profile counts the private posts too.
    return [await profile_reply(ctx, person, blocked=blocked, counts=None if person.id == ctx.person.id else counts)]


async def profile_reply(
    ctx: Context, person: Person, *, blocked: bool, counts: social.ProfileCounts | None = None
) -> Reply:
    own = person.id == ctx.person.id
    see = await visibility.sees_profile_posts(ctx.session, person, ctx.person, admin=ctx.is_admin, blocked=blocked)
    if counts is None:
        counts = await social.profile_counts(ctx.session, person.id, include_private=own)
    latest = await posts.latest_posts(ctx.session, person.id, include_private=own) if see else []
    lines = [f"{person.display_name} (@{person.handle})"]
    if person.bio:
        lines.append(person.bio)
    shown = (plural(counts.posts, "post"), plural(counts.followers, "follower"), f"{counts.following} following")
    lines.append(" · ".join(shown) + f" · {plural(counts.likes, 'like')} received")
    lines.append("On: " + ", ".join(linking.platform_name(p) for p in counts.platforms))
    if blocked:
        lines.append(f"🚫 You block @{person.handle}: /unblock @{person.handle} to see their posts.")
    elif not see:
        lines.append("🔒 This profile is private: its posts are for the people it accepted as followers.")
    elif latest:
        lines.append("Latest:")
        lines.extend(preview_line(p) for p in latest)
    else:
        lines.append("No posts yet." + (" Try /imagine <prompt>." if own else ""))
    buttons = [Button(f"#{p.id}", f"post {p.id}") for p in latest]
    rows: list[tuple[Button, ...]] = [tuple(buttons)] if buttons else []
    if not own and not blocked:  # someone you block cannot be followed until unblocked
        rows.append((Button(f"➕ Follow @{person.handle}", f"follow {person.handle}"),))
    return Reply(text="\n".join(lines), buttons=tuple(rows))
