"""The persistent generation queue: progress, idempotency, quotas, limits, retries and recovery."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, update

from core.app import Core, bootstrap
from core.config import Settings
from core.gen.backend import GeneratedImage, GenerationError, ImageRequest
from core.gen.local import LocalBackend
from core.messenger import MessageRef
from core.models import GenerationJob, Person, Post, utcnow
from core.provenance import Claim, pixel_hash
from core.replies import Reply
from tests.conftest import empty_tables
from tests.fakes.platform import add_post, person_id
from tests.support import Chat, actor


class ScriptedBackend:
    """An ImageBackend whose answers the test scripts: failures first, then the offline image.
    `gate` (when set) holds every generation until the test opens it."""

    name = "scripted"
    model = "scripted-1"
    honours_seed = True
    sizes = LocalBackend.sizes

    def __init__(self, failures: list[GenerationError] | None = None) -> None:
        self.failures = list(failures or [])
        self.gate: asyncio.Event | None = None
        self.calls = 0
        self.running = 0
        self.max_running = 0
        self._local = LocalBackend()

    async def generate(self, request: ImageRequest) -> GeneratedImage:
        self.calls += 1
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        try:
            if self.gate is not None:
                await self.gate.wait()
            if self.failures:
                raise self.failures.pop(0)
            image = await self._local.generate(request)
            return replace(image, backend=self.name, model=self.model)
        finally:
            self.running -= 1

    async def aclose(self) -> None:
        return None


class RecordingMessenger:
    """A Messenger that keeps what the core sent and edited, in order."""

    platform = "console"
    rate_per_second = 1000.0

    def __init__(self) -> None:
        self.events: list[tuple[str, str, Reply]] = []
        self._next = 100

    async def send(self, chat_id: str, reply: Reply) -> MessageRef:
        self._next += 1
        self.events.append(("send", chat_id, reply))
        return MessageRef(self.platform, chat_id, str(self._next))

    async def edit(self, ref: MessageRef, reply: Reply) -> MessageRef:
        self.events.append(("edit", ref.message_id, reply))
        return ref


@pytest.fixture
async def make_core(settings: Settings, database_url: str) -> AsyncIterator:
    """Build extra cores on the test database with their own backend and settings."""
    made: list[Core] = []

    async def build(backend: ScriptedBackend, start: bool = True, **overrides: object) -> Core:
        app = await bootstrap(settings.model_copy(update=overrides), backend=backend)
        if start:
            await app.start()
        made.append(app)
        return app

    yield build
    for app in made:
        await app.aclose()
    await empty_tables(database_url)


async def _value(value: int) -> int:
    return value


async def until(probe: Callable[[], Awaitable[int]], wanted: int, within: float = 10.0) -> None:
    """Poll until `probe()` gives `wanted`; the machine may be slow, so no fixed sleeps."""
    async with asyncio.timeout(within):
        while await probe() != wanted:  # noqa: ASYNC110 - the state is in the database
            await asyncio.sleep(0.02)


async def count(core: Core, model: type, *where: object) -> int:
    async with core.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def test_imagine_replies_with_progress_then_the_core_edits_it_into_the_post(chat: Chat) -> None:
    messenger = RecordingMessenger()
    chat.core.register_messenger(messenger)
    [progress] = await chat.say("alice", "/imagine a red fox in the snow")
    assert progress.job_id is not None and "Queued, number 1" in progress.text
    await chat.core.progress_shown(progress.job_id, MessageRef("console", "chat-alice", "7"))
    job = await chat.finish([progress])
    async with asyncio.timeout(10):
        await chat.core.drain()
    edits = [reply for kind, message_id, reply in messenger.events if kind == "edit" and message_id == "7"]
    assert edits, messenger.events
    final = edits[-1]
    assert final.post_id == job.post_id and final.image is not None and final.image.path.exists()
    assert final.edit and any(b.action == f"like {job.post_id}" for row in final.buttons for b in row)


async def test_the_same_request_delivered_twice_makes_one_job_and_one_post(chat: Chat) -> None:
    who = actor("alice")
    first = await chat.core.handle(who, "/imagine a fox", request_id="msg-42")
    second = await chat.core.handle(who, "/imagine a fox", request_id="msg-42")
    assert first[0].job_id == second[0].job_id
    await chat.finish(first)
    assert await count(chat.core, Post) == 1
    assert await count(chat.core, GenerationJob) == 1


async def test_quota_holds_under_concurrent_requests_from_one_person(make_core, settings: Settings) -> None:
    core = await make_core(ScriptedBackend(), daily_quota=3)
    chat = Chat(core)
    await chat.say("alice", "/start")
    replies = await asyncio.gather(*(chat.say("alice", f"/imagine fox number {i}") for i in range(10)))
    accepted = [r[0] for r in replies if r[0].job_id is not None]
    refused = [r[0] for r in replies if r[0].job_id is None]
    assert len(accepted) == 3
    assert all("used all 3 images for today" in r.text for r in refused), [r.text for r in refused]
    assert await count(core, GenerationJob) == 3
    quota = await chat.text("alice", "/quota")
    assert "3 of 3" in quota and "0 left" in quota


async def test_a_failed_job_does_not_use_quota(make_core) -> None:
    refusal = GenerationError("Your prompt was refused by the content policy.", retryable=False)
    core = await make_core(ScriptedBackend([refusal]), daily_quota=1)
    chat = Chat(core)
    job = await chat.finish(await chat.say("alice", "/imagine something"))
    assert job.status == "failed" and "content policy" in (job.error or "")
    assert "quota was not used" in (job.error or "")
    assert await chat.post("alice", "a calm lake") > 0  # the one image of the day is still there


async def test_cooldown_between_requests_is_enforced_and_admins_are_exempt(make_core) -> None:
    core = await make_core(ScriptedBackend(), generation_cooldown_seconds=60)
    chat = Chat(core)
    await chat.say("alice", "/imagine one")
    assert "Please wait" in await chat.text("alice", "/imagine two")
    await chat.say("admin", "/imagine one")
    assert "Queued" in await chat.text("admin", "/imagine two")
    assert "no daily limit" in await chat.text("admin", "/quota")


async def test_retryable_failures_are_retried_with_backoff_and_retry_after(make_core) -> None:
    failures = [
        GenerationError("busy", retryable=True, retry_after=0.05),
        GenerationError("server error", retryable=True, retry_after=0.05),
    ]
    backend = ScriptedBackend(failures)
    core = await make_core(backend)
    core.queue.config = replace(core.queue.config, poll_seconds=0.02)
    chat = Chat(core)
    job = await chat.finish(await chat.say("alice", "/imagine a stubborn fox"))
    assert job.status == "done" and job.attempts == 3
    assert backend.calls == 3
    assert await count(core, Post) == 1


async def test_a_job_gives_up_after_the_configured_attempts(make_core) -> None:
    failures = [GenerationError("server error", retryable=True, retry_after=0.01) for _ in range(5)]
    core = await make_core(ScriptedBackend(failures), generation_max_attempts=2)
    core.queue.config = replace(core.queue.config, poll_seconds=0.02)
    chat = Chat(core)
    job = await chat.finish(await chat.say("alice", "/imagine doomed"))
    assert job.status == "failed" and job.attempts == 2
    assert "gave up after 2 attempts" in (job.error or "")
    assert await count(core, Post) == 0


async def test_per_person_and_global_concurrency_limits(make_core) -> None:
    backend = ScriptedBackend()
    backend.gate = asyncio.Event()
    core = await make_core(backend, generation_concurrency=3, generation_per_person=1)
    chat = Chat(core)
    for i in range(3):
        await chat.say("alice", f"/imagine alice {i}")
    for i in range(3):
        await chat.say("bob", f"/imagine bob {i}")
    await until(lambda: count(core, GenerationJob, GenerationJob.status == "running"), 2)
    await asyncio.sleep(0.3)  # time for a third job to start, if the per-person limit failed
    async with core.sessions() as session:
        running = (
            await session.execute(
                select(GenerationJob.person_id, func.count())
                .where(GenerationJob.status == "running")
                .group_by(GenerationJob.person_id)
            )
        ).all()
    assert sorted(n for _, n in running) == [1, 1]  # one each, though three workers are free
    backend.gate.set()
    async with asyncio.timeout(20):
        await core.drain()
    assert await count(core, Post) == 6
    assert backend.max_running <= 2


async def test_a_crash_mid_generation_is_recovered_with_no_loss_and_no_duplicate(make_core) -> None:
    stuck = ScriptedBackend()
    stuck.gate = asyncio.Event()
    first = await make_core(stuck)
    chat = Chat(first)
    jobs = [(await chat.say(name, f"/imagine {name}'s fox"))[0].job_id for name in ("alice", "bob", "carol")]
    await until(lambda: count(first, GenerationJob, GenerationJob.status == "running"), 3)

    # A second process starts while the first is still stuck, its leases passed (as when the first
    # stalled past them, or after a crash and restart; on SQLite the restart itself ends them):
    async with first.sessions() as session:
        await session.execute(update(GenerationJob).values(lease_until=utcnow() - timedelta(seconds=1)))
        await session.commit()
    second = await make_core(ScriptedBackend())
    async with asyncio.timeout(20):
        await second.drain()
    # ...then the first one wakes up and finishes its stale work: it must not post again.
    stuck.gate.set()
    await until(lambda: _value(stuck.running), 0)
    await asyncio.sleep(0.3)  # and the stale workers try to complete
    assert await count(second, Post) == 3
    async with second.sessions() as session:
        done = (await session.scalars(select(GenerationJob).where(GenerationJob.id.in_(jobs)))).all()
    assert {j.status for j in done} == {"done"}
    assert len({j.post_id for j in done}) == 3


async def test_unknown_and_bad_requests_create_no_job(chat: Chat) -> None:
    for line in ("/imagine", "/imagine   ", "/imagine " + "x" * 201, "/imagine fox --ar 5:4", "/imagine fox --seed -1"):
        replies = await chat.say("alice", line)
        assert replies[0].job_id is None, line
    assert await count(chat.core, GenerationJob) == 0


async def test_gallery_gets_every_public_post_once_and_never_a_private_one(chat: Chat) -> None:
    messenger = RecordingMessenger()
    chat.core.register_messenger(messenger)
    chat.core.register_gallery("console", "gallery")
    public = await chat.post("alice", "a public fox")
    await chat.finish(await chat.say("alice", "/imagine a secret fox --private"))
    async with asyncio.timeout(10):
        await chat.core.drain()
    sent = [reply for kind, chat_id, reply in messenger.events if kind == "send" and chat_id == "gallery"]
    assert [r.post_id for r in sent] == [public]
    assert sent[0].image is not None


async def test_jobs_queued_while_every_worker_is_looking_start_without_waiting_for_the_poll(make_core) -> None:
    backend = ScriptedBackend()
    backend.gate = asyncio.Event()
    core = await make_core(backend, start=False, generation_concurrency=8, generation_per_person=8)
    core.queue.config = replace(core.queue.config, poll_seconds=60)  # only wake-ups can start these jobs
    chat = Chat(core)
    await core.start()
    # Every worker's first look waits for the claim lock while the twelve requests are queued: a look
    # that began before a job existed must still not lose that job's wake-up.
    async with core.queue._claim_lock:
        await asyncio.gather(*(chat.say(f"user{i}", f"/imagine fox number {i}") for i in range(12)))
    async with asyncio.timeout(5):
        while backend.running < 8:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    backend.gate.set()
    async with asyncio.timeout(10):
        await core.drain()  # the four left start as workers come free, with no wake-up from outside
    assert await count(core, Post) == 12


async def test_a_crash_inside_a_job_requeues_it_and_the_worker_carries_on(make_core, monkeypatch) -> None:
    core = await make_core(ScriptedBackend(), generation_concurrency=1)
    core.queue.config = replace(core.queue.config, poll_seconds=0.02, backoff_base=0.01)
    original = core.queue._complete
    crashes = []

    async def complete_once_broken(job, made, handle):  # the database goes away at the worst moment, once
        if not crashes:
            crashes.append(job.id)
            raise ConnectionError("database connection lost")
        await original(job, made, handle)

    monkeypatch.setattr(core.queue, "_complete", complete_once_broken)
    chat = Chat(core)
    first = await chat.finish(await chat.say("alice", "/imagine unlucky fox"))
    second = await chat.finish(await chat.say("bob", "/imagine lucky fox"))
    assert crashes == [first.id]
    assert first.status == "done" and first.attempts == 2
    assert second.status == "done"
    assert await count(core, Post) == 2


class OneByOneBackend(ScriptedBackend):
    """Each image waits for its own go: `release(prompt)`."""

    def __init__(self) -> None:
        super().__init__()
        self.go: dict[str, asyncio.Event] = {}

    def release(self, prompt: str) -> None:
        self.go.setdefault(prompt, asyncio.Event()).set()

    async def generate(self, request: ImageRequest) -> GeneratedImage:
        await self.go.setdefault(request.prompt, asyncio.Event()).wait()
        return await super().generate(request)


async def test_people_waiting_in_line_see_their_place_move_up(make_core) -> None:
    backend = OneByOneBackend()
    core = await make_core(backend, generation_concurrency=1)
    core.outbox.poll_seconds = 0.02
    messenger = RecordingMessenger()
    core.register_messenger(messenger)
    chat = Chat(core)
    for n, name in enumerate(("ann", "ben", "cat")):
        [progress] = await chat.say(name, f"/imagine {name}'s fox")
        await core.progress_shown(progress.job_id, MessageRef("console", f"chat-{name}", str(n + 1)))
    await until(lambda: count(core, GenerationJob, GenerationJob.status == "running"), 1)

    def shown_to_cat() -> list[str]:
        return [reply.text for kind, message_id, reply in messenger.events if kind == "edit" and message_id == "3"]

    backend.release("ann's fox")  # ann's image is done and ben's starts: cat is now first in line
    async with asyncio.timeout(10):
        while not any("number 1 in line" in text for text in shown_to_cat()):  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    backend.release("ben's fox")
    backend.release("cat's fox")
    async with asyncio.timeout(20):
        await core.drain()
    assert shown_to_cat()[-1].startswith("#")  # and in the end, her post


async def test_a_persons_quota_day_is_their_own_local_day(chat: Chat) -> None:
    await chat.say("alice", "/digest 09:00 Pacific/Kiritimati")  # UTC+14: never the same midnight as UTC
    alice = await person_id(chat.core, "alice")
    midnight = datetime.now(ZoneInfo("Pacific/Kiritimati")).replace(hour=0, minute=0, second=0, microsecond=0)
    async with chat.core.sessions() as session:
        for n, finished in enumerate((midnight - timedelta(minutes=1), midnight + timedelta(seconds=1))):
            session.add(
                GenerationJob(
                    idempotency_key=f"quota-day-{n}",
                    person_id=alice,
                    prompt="a fox",
                    seed=n,
                    aspect="1:1",
                    visibility="public",
                    status="done",
                    attempts=1,
                    not_before=finished,
                    created_at=finished,
                    finished_at=finished,
                )
            )
        await session.commit()
    quota = await chat.text("alice", "/quota")
    assert "made 1 of " in quota  # the job a minute before her midnight was yesterday's
    assert "resets at midnight, Pacific/Kiritimati time" in quota


async def signed_claim(core: Core, post_id: int) -> Claim:
    """What the post's image file says of itself, checked against the key and the pixels."""
    async with core.sessions() as session:
        post = await session.get(Post, post_id)
    assert post is not None
    data = core.media.path(post.image_path).read_bytes()
    verdict = core.signer.verify(data)
    assert verdict is not None and verdict.made_here and not verdict.altered, verdict
    assert verdict.claim is not None and verdict.claim.pixels == pixel_hash(data)
    return verdict.claim


def stored_files(core: Core) -> set[str]:
    return {str(path.relative_to(core.media.root)) for path in core.media.root.rglob("*") if path.is_file()}


async def test_the_image_is_stored_once_signed_for_its_post(make_core) -> None:
    core = await make_core(ScriptedBackend())
    job = await Chat(core).finish(await Chat(core).say("alice", "/imagine a signed fox"))
    assert job.post_id is not None
    claim = await signed_claim(core, job.post_id)
    assert claim == Claim(job.post_id, "alice", "a signed fox", None, claim.pixels)
    async with core.sessions() as session:
        post = await session.get(Post, job.post_id)
    assert post is not None and stored_files(core) == {post.image_path}  # no unsigned copy, no leftovers


async def test_a_post_id_another_writer_took_meanwhile_is_not_signed_into_the_image(make_core) -> None:
    core = await make_core(ScriptedBackend())
    chat = Chat(core)
    first = await chat.post("alice", "a first fox")
    # A post written the ordinary way (not by the queue) takes the next id: on SQLite, the one the queue
    # counted on for its next post; on PostgreSQL the sequence hands the two different ids anyway.
    other = await add_post(core, "alice", utcnow())
    second = await chat.post("alice", "a second fox")
    assert len({first, other, second}) == 3
    claim = await signed_claim(core, second)
    assert (claim.post, claim.author, claim.prompt) == (second, "alice", "a second fox")
    assert await count(core, Post) == 3


async def test_an_author_renamed_while_the_image_is_made_is_named_in_its_signature(make_core) -> None:
    backend = ScriptedBackend()
    backend.gate = asyncio.Event()
    core = await make_core(backend)
    chat = Chat(core)
    replies = await chat.say("alice", "/imagine a renamed fox")
    await until(lambda: _value(backend.calls), 1)  # the worker has read the author's handle
    alice = await person_id(core, "alice")
    async with core.sessions() as session:
        await session.execute(update(Person).where(Person.id == alice).values(handle="alicia"))
        await session.commit()
    backend.gate.set()
    job = await chat.finish(replies)
    assert job.status == "done" and job.post_id is not None
    claim = await signed_claim(core, job.post_id)
    assert (claim.post, claim.author, claim.prompt, claim.parent) == (job.post_id, "alicia", "a renamed fox", None)
    async with core.sessions() as session:
        post = await session.get(Post, job.post_id)
    assert post is not None and stored_files(core) == {post.image_path}  # the file signed for @alice is gone


async def test_a_job_longer_than_its_lease_keeps_it_while_its_worker_lives(make_core) -> None:
    """One renewer keeps the leases of all of the queue's running jobs: an idle worker polling meanwhile
    finds none of them claimable, so no image is made twice."""
    backend = ScriptedBackend()
    backend.gate = asyncio.Event()
    core = await make_core(backend, generation_concurrency=3, generation_lease_seconds=1.0)
    core.queue.config = replace(core.queue.config, poll_seconds=0.1)  # the idle worker looks often
    chat = Chat(core)
    first = await chat.say("alice", "/imagine a slow fox")
    second = await chat.say("bob", "/imagine a slow owl")
    await until(lambda: _value(backend.calls), 2)
    async with core.sessions() as session:
        claimed = await session.scalar(select(func.min(GenerationJob.lease_until)))
    await asyncio.sleep(2.5)  # two and a half leases
    async with core.sessions() as session:
        renewed = await session.scalar(select(func.min(GenerationJob.lease_until)))
    assert claimed is not None and renewed is not None and renewed > claimed
    backend.gate.set()
    done = [await chat.finish(first), await chat.finish(second)]
    assert [job.status for job in done] == ["done", "done"] and [job.attempts for job in done] == [1, 1]
    assert backend.calls == 2 and await count(core, Post) == 2


async def test_working_says_whether_a_worker_of_this_process_holds_a_job(make_core) -> None:
    backend = ScriptedBackend()
    backend.gate = asyncio.Event()
    core = await make_core(backend, generation_concurrency=2)
    assert not core.queue.working()
    [reply] = await Chat(core).say("alice", "/imagine a fox that takes a while")
    assert reply.job_id is not None, reply.text
    await until(lambda: _value(backend.running), 1)
    assert core.queue.working() and not await core.queue.idle()
    backend.gate.set()
    async with asyncio.timeout(10):
        while core.queue.working():  # noqa: ASYNC110 - the state is the queue's own
            await asyncio.sleep(0.01)
    assert await core.queue.idle()  # nothing is held in memory once the post is written


async def test_a_new_request_is_told_its_place_behind_the_jobs_waiting_and_a_repeat_its_place_now(make_core) -> None:
    core = await make_core(ScriptedBackend(), start=False)  # no worker: every job waits
    chat = Chat(core)
    texts = [(await chat.say(name, f"/imagine {name}'s fox"))[0].text for name in ("ann", "ben", "cat")]
    assert [text.splitlines()[0] for text in texts] == [f"⏳ Queued, number {n} in line." for n in (1, 2, 3)], texts
    async with core.sessions() as session:  # ann's job has started elsewhere: ben is first now
        await session.execute(update(GenerationJob).where(GenerationJob.prompt == "ann's fox").values(status="running"))
        await session.commit()
    [dan] = await chat.say("dan", "/imagine dan's fox")
    assert dan.text.startswith("⏳ Queued, number 3 in line."), dan.text


async def test_a_job_cut_off_as_often_as_it_may_be_tried_fails_instead_of_running_again(make_core) -> None:
    """A job whose runs ended in a crash (or a stop) as many times as the attempts allow may be what brings the
    process down: the next take-over fails it with a message, instead of running it once more forever."""
    backend = ScriptedBackend()
    core = await make_core(backend, start=False)
    [reply] = await Chat(core).say("alice", "/imagine a fox that crashes everything")
    assert reply.job_id is not None, reply.text
    limit = core.queue.config.max_attempts
    async with core.sessions() as session:  # as a process killed during its last allowed run leaves it
        await session.execute(
            update(GenerationJob)
            .where(GenerationJob.id == reply.job_id)
            .values(status="running", worker="w-dead", lease_until=None, attempts=limit)
        )
        await session.commit()
    await core.start()
    async with asyncio.timeout(10):
        await core.drain()
    async with core.sessions() as session:
        job = await session.get(GenerationJob, reply.job_id)
    assert job is not None and job.status == "failed", job.status
    assert (job.error or "").startswith(f"The last try was cut off (a restart or a crash). I gave up after {limit}")
    assert backend.calls == 0 and await count(core, Post) == 0
