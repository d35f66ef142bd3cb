"""The composition root and the entry points every adapter calls: `Core.handle`, `Core.press`,
`Core.answer`, `Core.invoke` (typed options), `Core.suggest` (completions); and the port adapters
plug into: `register_messenger`, `register_gallery`, `progress_shown`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from core import bans, commands, gallery, outbox, people, readonly, scheduler, sent_files, threads
from core.actor import Actor
from core.config import Settings
from core.db import Checkpointer, create_sessionmaker
from core.errors import UserError
from core.feed.digest_render import DigestRenderer
from core.gen import progress
from core.gen.backend import ImageBackend
from core.gen.breaker import CircuitBreaker
from core.gen.local import LocalBackend
from core.gen.media import MediaStore
from core.gen.moderation import Moderator
from core.gen.progress import JobProgressRenderer
from core.gen.queue import GenerationQueue, QueueSettings
from core.gen.service import ImageService
from core.leases import DeploymentLock
from core.messenger import MessageRef, Messenger
from core.migrate import upgrade
from core.models import GenerationJob, Person, Post
from core.params import Upload, Values
from core.provenance import Signer, load_key
from core.ratelimit import DOUBLE_PRESS_SECONDS, RateLimiter, wait_line
from core.replies import Ask, Reply
from core.startup import check_media_dir, open_database
from core.suggest import Suggestion, suggestions
from core.text import clean, clip_echo
from core.turns import ChatTurns

log = logging.getLogger(__name__)

LINE_UPDATES = 5  # waiting jobs whose place in line is shown anew when a job starts
# Built once: every claim of a job sends it, in SQLite's one writer's turn.
_FIRST_SHOWN_IN_LINE = (
    select(GenerationJob)
    .where(GenerationJob.status == "queued", GenerationJob.progress_ref.is_not(None))
    .order_by(GenerationJob.id)
    .limit(LINE_UPDATES)
)
ENDED = ("done", "failed")  # a job's last states: its result goes to the requester
# How long a finished job with no progress message waits for the adapter to report one before its
# result goes out as a new message (the adapter's reply may wait behind a chat's pacing).
PROGRESS_GRACE = timedelta(seconds=5)
# How often and how long a discussion thread's gallery message is looked for (see Core.thread_opened).
THREAD_LOOKUPS, THREAD_LOOKUP_PAUSE = 10, 0.5
OOPS = "Sorry, something went wrong on our side and nothing was saved. Please try again in a moment."


def _unknown(name: str) -> Reply:
    return Reply(text=clip_echo(f"Unknown command /{name}. Send /help to see what I can do."), error=True)


@dataclass(frozen=True, slots=True)
class ParsedLine:
    name: str
    args: str


def parse_line(line: str) -> ParsedLine | None:
    """`/cmd@botname args` -> ("cmd", "args"); None when the line is not a command."""
    stripped = line.strip()
    if not stripped.startswith("/"):
        return None
    head, args = _split(stripped[1:])
    return ParsedLine(head.split("@", 1)[0].lower(), args)


def _picture_command(name: str) -> commands.Command | None:
    """The command a line names when a picture comes with it: a photo captioned /imagine starts from it."""
    return commands.COMMANDS.get("edit" if name == "imagine" else name)


def _split(text: str) -> tuple[str, str]:
    """The first word and the rest, split at any whitespace (a tab or a newline too)."""
    parts = text.strip().split(maxsplit=1)
    return (parts[0], parts[1].strip()) if len(parts) == 2 else (parts[0] if parts else "", "")


class Core:
    def __init__(self, settings: Settings, engine: AsyncEngine, backend: ImageBackend, media: MediaStore) -> None:
        self.settings = settings
        self.engine = engine
        self.sessions: async_sessionmaker[AsyncSession] = create_sessionmaker(engine)
        self._reads_without_transaction = engine.dialect.name == "postgresql"  # core.readonly
        self.checkpointer = Checkpointer(engine)
        self.media = media
        self.backend = backend
        self.images = ImageService(backend, media)
        self.moderator = Moderator(settings)
        self.breaker = CircuitBreaker.from_settings(settings)
        self._extra_galleries: list[tuple[str, str]] = []
        self.outbox = outbox.Outbox(self.sessions)
        self.outbox.add_renderer("job", JobProgressRenderer(media))
        self.outbox.add_renderer("post", gallery.PostRenderer(media))
        self.outbox.add_renderer("text", outbox.TextRenderer())
        self.outbox.add_renderer("digest", DigestRenderer(media))
        self.outbox.add_renderer("bestof", DigestRenderer(media))
        self.scheduler: scheduler.Scheduler | None = None
        self.limiter = RateLimiter(settings.rate_limit_burst, settings.rate_limit_per_minute / 60)
        self.scheduler_lock = DeploymentLock(engine, "scheduler")
        self.turns = ChatTurns(engine, self.sessions)  # adapters handle a chat's updates one at a time
        self.signer = Signer(load_key(settings))
        self.outbox.on_unreachable = self.mark_unreachable
        self.queue = GenerationQueue(
            self.sessions,
            self.images,
            QueueSettings(
                concurrency=settings.generation_concurrency,
                per_person=settings.generation_per_person,
                max_attempts=settings.generation_max_attempts,
                timeout=settings.generation_timeout_seconds,
                lease=settings.generation_lease_seconds,
            ),
            on_progress=self._job_progress,
            on_published=self._published,
            on_committed=self.outbox.wake,
            breaker=self.breaker,
            sign=self.signer.sign,
        )

    # --- what adapters call ---------------------------------------------------------------

    async def handle(
        self, actor: Actor, line: str, *, request_id: str | None = None, upload: Upload | None = None
    ) -> list[Reply]:
        """A typed message, with the picture attached to it (or to the message it answers), if any.
        Anything that is not a command gets a hint."""
        parsed = parse_line(clean(line))
        if parsed is None:
            return [Reply(text="Send /imagine <prompt> to create an image, or /help to see everything.")]
        if upload is not None:
            return await self._with_upload(actor, parsed, upload, request_id)
        return await self.run(actor, parsed.name, parsed.args, via_button=False, request_id=request_id)

    async def _with_upload(
        self, actor: Actor, parsed: ParsedLine, upload: Upload, request_id: str | None
    ) -> list[Reply]:
        found = _picture_command(parsed.name)
        if found is None or found.image_param is None:  # /like 12 under a photo: the photo is not part of it
            return await self.run(actor, parsed.name, parsed.args, via_button=False, request_id=request_id)
        attached: Values = {found.image_param: upload}
        return await self._execute(actor, found, lambda: found.parse(parsed.args, attached), False, request_id)

    async def press(self, actor: Actor, action: str, *, request_id: str | None = None) -> list[Reply]:
        """A button press; its action id is a command line without the slash."""
        name, args = _split(clean(action))
        return await self.run(actor, name.lower(), args, via_button=True, request_id=request_id)

    async def answer(self, actor: Actor, ask: Ask, text: str, *, request_id: str | None = None) -> list[Reply]:
        """The person's text in answer to an `Ask`."""
        line = f"{ask.prefix} {clean(text)}".strip()
        return await self.run(actor, ask.command, line, via_button=False, request_id=request_id)

    def takes_upload(self, line: str) -> bool:
        """Whether this line uses a picture sent with it (or replied to), so the adapter should fetch it."""
        parsed = parse_line(clean(line))
        found = _picture_command(parsed.name) if parsed else None
        return found is not None and found.image_param is not None

    async def thread_opened(
        self, platform: str, chat_id: str, thread_id: str, gallery_chats: list[str], gallery_message_id: str
    ) -> int | None:
        """The platform showed gallery message `gallery_message_id` in a discussion chat, starting thread
        `thread_id` there: what is written in it from now on comments on that post (returned).
        The platform may show it before the outbox has recorded the message as sent: look a few times."""
        for attempt in range(THREAD_LOOKUPS):
            if attempt:
                await asyncio.sleep(THREAD_LOOKUP_PAUSE)
            async with self.sessions() as session:
                post_id = await threads.post_of_gallery_message(session, platform, gallery_chats, gallery_message_id)
                if post_id is not None:
                    await threads.link(session, platform, chat_id, thread_id, post_id)
                    await session.commit()
                    return post_id
        return None

    async def thread_comment(
        self, actor: Actor, thread_id: str, text: str, *, request_id: str | None = None
    ) -> list[Reply] | None:
        """A message in a discussion thread: a comment on its post (with every rule of /comment), or None
        when the thread is not under one of our gallery posts."""
        async with self.sessions() as session:
            post_id = await threads.post_of_thread(session, actor.platform, actor.chat_id or "", thread_id)
        if post_id is None:
            return None
        return await self.invoke(actor, "comment", {"post": post_id, "text": text}, request_id=request_id)

    def register_messenger(self, messenger: Messenger) -> None:
        """Let the core send on its own through this platform (progress, galleries, digests)."""
        self.outbox.register(messenger)

    @property
    def galleries(self) -> list[tuple[str, str]]:
        """The configured galleries (known to every process, whatever its roles), then any registered."""
        configured = self.settings.galleries
        return configured + [g for g in self._extra_galleries if g not in configured]

    def register_gallery(self, platform: str, chat_id: str) -> None:
        """A gallery an adapter serves (already known when the settings name it)."""
        if (platform, chat_id) not in self._extra_galleries:
            self._extra_galleries.append((platform, chat_id))

    async def progress_shown(self, job_id: int, ref: MessageRef) -> None:
        """The adapter sent a job's progress reply as message `ref`; keep it up to date from now on."""
        async with self.sessions() as session:
            job = await session.get(GenerationJob, job_id)
            if job is None:
                return
            if await progress.progress_shown(session, job, ref):
                await self._job_progress(session, [job])
            await session.commit()
        self.outbox.wake(ref.platform)

    async def files_sent(self, ref: MessageRef, post_id: int) -> None:
        """The adapter sent post `post_id`'s picture as message `ref` itself (not through the outbox):
        keep the platform's ids of that file, so /verify recognises it when it comes back re-encoded."""
        async with self.sessions() as session:
            await sent_files.record(session, ref.platform, ref.files, post_id)
            await session.commit()

    async def mark_unreachable(self, platform: str, chat_id: str) -> None:
        async with self.sessions() as session:
            await outbox.mark_unreachable(session, platform, chat_id)
            await session.commit()

    # --- running commands -------------------------------------------------------------------

    async def run(
        self, actor: Actor, name: str, args: str, *, via_button: bool, request_id: str | None = None
    ) -> list[Reply]:
        """A command written as text: `args` is what follows its name."""
        found = commands.COMMANDS.get(name)
        if found is None:
            return [_unknown(name)]
        return await self._execute(actor, found, lambda: found.parse(args), via_button, request_id)

    async def invoke(
        self, actor: Actor, name: str, options: Mapping[str, object], *, request_id: str | None = None
    ) -> list[Reply]:
        """A command whose values came typed, by parameter name (a Discord slash command's options):
        no line is built or parsed, and the checks and answers are those of the same command typed."""
        found = commands.COMMANDS.get(name)
        if found is None:
            return [_unknown(name)]
        cleaned = {key: clean(value) if isinstance(value, str) else value for key, value in options.items()}
        return await self._execute(actor, found, lambda: found.check(cleaned), False, request_id)

    async def suggest(self, actor: Actor, name: str, param: str, prefix: str) -> list[Suggestion]:
        """Completions for a parameter as the person types it; empty when there is nothing cheap to offer."""
        found = commands.COMMANDS.get(name)
        declared = {p.name: p for p in found.params} if found else {}
        if param not in declared:
            return []
        async with self.sessions() as session:
            return await suggestions(session, actor, declared[param], prefix)

    async def _execute(
        self,
        actor: Actor,
        found: commands.Command,
        values_of: Callable[[], Values],
        via_button: bool,
        request_id: str | None,
    ) -> list[Reply]:
        try:
            if found.reads_only and self._reads_without_transaction:
                read = await self._attempt(actor, found, values_of, via_button, request_id, reading=True)
                if read is not None:
                    return read
            # A command that writes, or a read for which the person's row has a write due.
            replies = await self._attempt(actor, found, values_of, via_button, request_id, reading=False)
            assert replies is not None, "only a reading attempt gives up"
            return replies
        except UserError as exc:
            text = str(exc) or found.usage_line  # a bare UsageError: the usage is the answer
            return [Reply(text=clip_echo(text), notice=via_button, error=True)]
        except Exception:
            log.exception("command /%s failed", found.name)
            return [Reply(text=OOPS, notice=via_button, error=True)]

    async def _attempt(
        self,
        actor: Actor,
        found: commands.Command,
        values_of: Callable[[], Values],
        via_button: bool,
        request_id: str | None,
        *,
        reading: bool,
    ) -> list[Reply] | None:
        """The command in one session. `reading`: outside a transaction (core.readonly), or None, with
        nothing done, when the person's own row needs a write first (first contact, the last-seen touch,
        an ended ban)."""
        async with self.sessions() as session:
            if reading:
                await readonly.begin(session, found.name)
                person = await people.known_person(session, actor)
                if person is None or session.dirty or bans.ended(person):
                    return None
            else:
                person = await self._person(session, actor)
            # Configured in ADMINS, or promoted by one of those with /admin add.
            admin = self.settings.is_admin(person.handle, actor.platform_id) or person.promoted_admin
            limited = None if admin else self._rate_limited(person.id, found.name, via_button, values_of)
            if limited is not None:
                return [limited]
            values = values_of()
            ctx = commands.Context(self, session, actor, person, via_button, admin, request_id)
            await bans.check(session, person, found.name, self.galleries)
            replies = await found.handler(ctx, **values)
            await session.commit()
        for effect in ctx.after_commit:
            await effect()
        return replies

    def _rate_limited(
        self, person_id: int, name: str, via_button: bool, values_of: Callable[[], Values]
    ) -> Reply | None:
        """The answer when this person is over their rate, or None. A press repeating their last
        press of the same button that ran, in a double tap or past the limit, is coalesced with it:
        acknowledged, neither run nor refused."""
        press = f"{name} {values_of()}" if via_button else None
        if press is not None and self.limiter.repeated_press(person_id, press, within=DOUBLE_PRESS_SECONDS):
            return Reply(text="⏳ Got it.", notice=True)
        wait = self.limiter.take(person_id, press)
        if wait == 0:
            return None
        if press is not None and self.limiter.repeated_press(person_id, press):
            return Reply(text="⏳ Got it.", notice=True)
        return Reply(text=wait_line(wait), notice=via_button, error=True)

    async def _person(self, session: AsyncSession, actor: Actor) -> Person:
        """Find or create the person in the command's session. A new person or a changed identity is
        committed at once, so that it stays even when the command then fails; a read costs no transaction."""
        person, created = await people.ensure_person(session, actor, self.settings.admin_list)
        if created or session.dirty:
            await session.commit()
        if created:
            await session.refresh(person)  # the columns the database filled in (server defaults)
        return person

    # --- background work --------------------------------------------------------------------

    async def _job_progress(self, session: AsyncSession, jobs: Sequence[GenerationJob]) -> None:
        """Jobs whose state changed in the session's transaction (several at once from a batch of the
        queue's): a start moves the line up, a result goes to its requester, anything else is edited in."""
        started = [job for job in jobs if job.status == "running"]
        if started:
            await self._move_line_up(session, started[-1])
        await progress.deliver_results(session, [job for job in jobs if job.status in ENDED], grace=PROGRESS_GRACE)
        for job in jobs:
            if job.status in ENDED or job.progress_ref is None or job.shown_status == job.status:
                continue
            await self._edit_progress(session, job, f"job:{job.id}:{job.status}:{job.attempts}")

    async def _move_line_up(self, session: AsyncSession, started: GenerationJob) -> None:
        """A job left the line: the first few waiting see their new place. Only the first few, so a
        long line costs a handful of edits per start, not one per person waiting."""
        for job in await session.scalars(_FIRST_SHOWN_IN_LINE):
            await self._edit_progress(session, job, f"job:{job.id}:line:{started.id}:{started.attempts}")

    async def _edit_progress(self, session: AsyncSession, job: GenerationJob, key: str) -> None:
        assert job.progress_ref is not None
        ref = MessageRef.decode(job.progress_ref)
        await outbox.add(
            session,
            key=key,
            platform=ref.platform,
            chat_id=ref.chat_id,
            kind="job",
            payload={"job": job.id},
            person_id=job.person_id,
        )

    async def _published(self, session: AsyncSession, post: Post) -> None:
        await gallery.publish(session, self.galleries, post)

    async def start(self, *, schedule: bool = False, workers: bool = True, senders: bool = True) -> None:
        """Start the generation workers and the outbox senders; with `schedule`, also the periodic
        jobs (digests, notifications, best of the day). A process of a larger deployment may run
        only some of them (core.roles)."""
        if workers:
            await self.queue.start()
        if senders:
            await self.outbox.start()
        self.checkpointer.start()
        if schedule:
            self.scheduler = scheduler.build(self)
            self.scheduler.start()

    def leads(self) -> list[str]:
        """What this process holds for the deployment now (core.health shows it)."""
        lead = ["scheduler"] if self.scheduler is not None and self.scheduler_lock.held else []
        return lead + [f"outbox:{platform}" for platform in self.outbox.leads()]

    async def drain(self) -> None:
        """Wait until no generation is queued or running and the outbox has sent what it can.
        Callers bound it with `asyncio.timeout`. It polls the database: the work may be another process's."""
        while not (await self.queue.idle() and await self.outbox.idle()):  # noqa: ASYNC110
            await asyncio.sleep(0.05)

    async def aclose(self) -> None:
        if self.scheduler is not None:
            await self.scheduler.stop()
        await self.scheduler_lock.release()
        await self.turns.aclose()
        await self.queue.stop()
        await self.outbox.stop()
        await self.checkpointer.stop()
        await self.moderator.aclose()
        await self.backend.aclose()
        await self.engine.dispose()


def make_backend(settings: Settings) -> ImageBackend:
    if settings.uses_openai:
        from core.gen.openai_backend import OpenAIBackend

        return OpenAIBackend(settings)
    return LocalBackend()


async def bootstrap(settings: Settings, *, backend: ImageBackend | None = None) -> Core:
    """Build the core: engine, schema migrations, media store and image backend. Call `start()`
    to run the background workers."""
    check_media_dir(settings.media_dir)
    engine = await open_database(settings.database_url)
    await upgrade(engine)
    return Core(settings, engine, backend or make_backend(settings), MediaStore(settings.media_dir))
