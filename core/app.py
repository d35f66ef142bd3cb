"""The composition root and the entry point every adapter calls: `Core.handle` and `Core.press`."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from core import commands, people
from core.actor import Actor
from core.config import Settings
from core.db import create_engine, create_sessionmaker
from core.errors import UserError
from core.gen.backend import ImageBackend
from core.gen.local import LocalBackend
from core.gen.media import MediaStore
from core.gen.service import ImageService
from core.migrate import upgrade
from core.models import Person
from core.replies import Ask, Reply

log = logging.getLogger(__name__)

OOPS = "Sorry, something went wrong on our side and nothing was saved. Please try again in a moment."


@dataclass(frozen=True, slots=True)
class ParsedLine:
    name: str
    args: str


def parse_line(line: str) -> ParsedLine | None:
    """`/cmd@botname args` -> ("cmd", "args"); None when the line is not a command."""
    stripped = line.strip()
    if not stripped.startswith("/"):
        return None
    head, _, args = stripped[1:].partition(" ")
    return ParsedLine(head.split("@", 1)[0].lower(), args.strip())


class Core:
    def __init__(self, settings: Settings, engine: AsyncEngine, backend: ImageBackend, media: MediaStore) -> None:
        self.settings = settings
        self.engine = engine
        self.sessions: async_sessionmaker[AsyncSession] = create_sessionmaker(engine)
        self.media = media
        self.backend = backend
        self.images = ImageService(backend, media)

    async def handle(self, actor: Actor, line: str) -> list[Reply]:
        """A typed message. Anything that is not a command gets a hint."""
        parsed = parse_line(line)
        if parsed is None:
            return [Reply(text="Send /imagine <prompt> to create an image, or /help to see everything.")]
        return await self.run(actor, parsed.name, parsed.args, via_button=False)

    async def press(self, actor: Actor, action: str) -> list[Reply]:
        """A button press; its action id is a command line without the slash."""
        name, _, args = action.strip().partition(" ")
        return await self.run(actor, name.lower(), args, via_button=True)

    async def answer(self, actor: Actor, ask: Ask, text: str) -> list[Reply]:
        """The person's text in answer to an `Ask`."""
        return await self.run(actor, ask.command, f"{ask.prefix} {text}".strip(), via_button=False)

    async def run(self, actor: Actor, name: str, args: str, *, via_button: bool) -> list[Reply]:
        found = commands.COMMANDS.get(name)
        if found is None:
            return [Reply(text=f"Unknown command /{name}. Send /help to see what I can do.")]
        try:
            person = await self._person(actor)
            async with self.sessions() as session:
                person = await session.merge(person, load=False)
                ctx = commands.Context(
                    self,
                    session,
                    actor,
                    person,
                    via_button,
                    self.settings.is_admin(person.handle, (actor.platform_id,)),
                )
                replies = await found.handler(ctx, args)
                await session.commit()
            for effect in ctx.after_commit:
                await effect()
            return replies
        except UserError as exc:
            return [Reply(text=str(exc), notice=via_button)]
        except Exception:
            log.exception("command /%s failed", name)
            return [Reply(text=OOPS, notice=via_button)]

    async def _person(self, actor: Actor) -> Person:
        """Find or create the person in a short transaction of its own."""
        async with self.sessions() as session:
            person, created = await people.ensure_person(session, actor)
            if created or session.dirty:
                await session.commit()
            return person

    async def aclose(self) -> None:
        await self.backend.aclose()
        await self.engine.dispose()


def make_backend(settings: Settings) -> ImageBackend:
    if settings.uses_openai:
        from core.gen.openai_backend import OpenAIBackend

        return OpenAIBackend(settings)
    return LocalBackend()


async def bootstrap(settings: Settings, *, backend: ImageBackend | None = None) -> Core:
    """Build the core: engine, schema migrations, media store and image backend."""
    engine = create_engine(settings.database_url)
    await upgrade(engine)
    return Core(settings, engine, backend or make_backend(settings), MediaStore(settings.media_dir))
