"""Scaling out: several processes of the real program (`python -m bots serve --roles ...`) on one
PostgreSQL database, against the fake OpenAI server and the fake Bot API; and SQLite's refusal."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.ext.asyncio import AsyncEngine

from core.app import bootstrap
from core.config import Settings
from core.db import create_engine
from core.models import GenerationJob, Post
from tests.fakes.openai_server import FakeOpenAI, image_ok, slow
from tests.processes import Proc, needs_postgres, until
from tests.support import Chat

LEASE = 2.0


@pytest.fixture
async def db(own_db: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(own_db)
    yield engine
    await engine.dispose()


async def enqueue(own_db: str, tmp_path: Path, people: int, each: int) -> list[int]:
    """Jobs asked through the core's /imagine, in this process, which runs no workers."""
    settings = Settings(
        _env_file=None,
        database_url=own_db,
        media_dir=tmp_path / "asker-media",
        image_backend="local",
        generation_cooldown_seconds=0,
        generation_per_person=2,
    )
    core = await bootstrap(settings)
    try:
        chat = Chat(core)
        jobs = []
        for n in range(each):
            for p in range(people):
                replies = await chat.say(f"p{p}", f"/imagine picture {n} of p{p}")
                jobs += [r.job_id for r in replies if r.job_id is not None]
        return jobs
    finally:
        await core.aclose()


def worker(name: str, tmp_path: Path, own_db: str, openai: FakeOpenAI, concurrency: int = 3) -> Proc:
    env = {
        "DATABASE_URL": own_db,
        "IMAGE_BACKEND": "openai",
        "OPENAI_API_KEY": "sk-test",
        "OPENAI_BASE_URL": openai.base_url,
        "OPENAI_MODERATION": "false",
        "GENERATION_CONCURRENCY": str(concurrency),
        "GENERATION_PER_PERSON": "2",
        "GENERATION_LEASE_SECONDS": str(LEASE),
    }
    return Proc(name, tmp_path / name, env, "serve", "--roles", "workers")


async def statuses(db: AsyncEngine) -> dict[str, int]:
    async with db.connect() as conn:
        rows = await conn.execute(select(GenerationJob.status, func.count()).group_by(GenerationJob.status))
        return {status: count for status, count in rows}


async def most_running_per_person(db: AsyncEngine) -> int:
    async with db.connect() as conn:
        counts = await conn.scalars(
            select(func.count())
            .select_from(GenerationJob)
            .where(GenerationJob.status == "running")
            .group_by(GenerationJob.person_id)
        )
        return max(counts.all(), default=0)


@needs_postgres
async def test_two_worker_processes_never_run_one_job_twice(
    own_db: str, db: AsyncEngine, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    # Each image takes longer than a lease: only renewals keep a live worker's job its own.
    fake_openai.default_image = slow(LEASE * 1.5, then=image_ok())
    jobs = await enqueue(own_db, tmp_path, people=4, each=3)
    first = await worker("w1", tmp_path, own_db, fake_openai).start()
    second = worker("w2", tmp_path, own_db, fake_openai)
    try:
        await until(lambda: running_now(db), within=30)
        await second.start()  # while the first is in the middle of its jobs
        peak = 0

        async def all_done() -> bool:
            nonlocal peak
            peak = max(peak, await most_running_per_person(db))
            return (await statuses(db)).get("done", 0) == len(jobs)

        await until(all_done, within=90)
        async with db.connect() as conn:
            posts = await conn.scalar(select(func.count()).select_from(Post))
            workers = set(await conn.scalars(select(GenerationJob.worker)))
            attempts = set(await conn.scalars(select(GenerationJob.attempts)))
    finally:
        await first.stop()
        await second.stop()
    assert len(fake_openai.image_requests) == len(jobs) == 12, first.log() + second.log()
    assert posts == len(jobs)
    assert attempts == {1}
    assert len(workers) == 2  # both processes worked
    assert peak <= 2  # the per-person limit held across the two processes


async def running_now(db: AsyncEngine) -> bool:
    return (await statuses(db)).get("running", 0) > 0


@needs_postgres
async def test_a_worker_killed_mid_job_has_its_job_finished_by_another_after_the_lease(
    own_db: str, db: AsyncEngine, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    fake_openai.script_images(slow(60))  # the first process never sees its image
    [job_id] = await enqueue(own_db, tmp_path, people=1, each=1)
    doomed = await worker("doomed", tmp_path, own_db, fake_openai).start()
    heir = worker("heir", tmp_path, own_db, fake_openai)
    try:
        await until(lambda: running_now(db), within=30)
        await asyncio.sleep(LEASE)  # long enough for a renewal, so the lease is the live one
        await doomed.kill()
        killed_at = time.monotonic()
        async with db.connect() as conn:
            lease_until, worker_id = (await conn.execute(select(GenerationJob.lease_until, GenerationJob.worker))).one()
        await heir.start()
        await until(lambda: done(db), within=60)
        took = time.monotonic() - killed_at
        async with db.connect() as conn:
            job = (await conn.execute(select(GenerationJob).where(GenerationJob.id == job_id))).one()
            posts = await conn.scalar(select(func.count()).select_from(Post))
            now = await conn.scalar(text("SELECT now()"))
    finally:
        await heir.stop()
    assert posts == 1
    assert job.status == "done" and job.attempts == 2 and job.worker != worker_id
    assert len(fake_openai.image_requests) == 2
    # Not taken over before the dead worker's lease had passed, and soon after it.
    assert job.finished_at >= lease_until, (job.finished_at, lease_until, now)
    assert took < LEASE + 15


async def done(db: AsyncEngine) -> bool:
    return (await statuses(db)).get("done", 0) == 1


@needs_postgres
async def test_a_live_job_is_not_taken_over_but_an_expired_lease_is(
    own_db: str, db: AsyncEngine, tmp_path: Path
) -> None:
    """In one process, by the claim itself: a running job is claimable only once its lease has passed."""
    [job_id] = await enqueue(own_db, tmp_path, people=1, each=1)
    settings = Settings(_env_file=None, database_url=own_db, media_dir=tmp_path / "m", image_backend="local")
    core = await bootstrap(settings)
    try:
        first = await core.queue._claim()
        assert first is not None and first.id == job_id
        other = await bootstrap(settings)
        try:
            assert await other.queue._claim() is None  # live lease
            async with db.begin() as conn:
                await conn.execute(update(GenerationJob).values(lease_until=func.now() - text("interval '1 second'")))
            taken = await other.queue._claim()
            assert taken is not None and taken.worker == other.queue.worker_id and taken.attempts == 2
        finally:
            await other.aclose()
    finally:
        await core.aclose()


async def test_sqlite_refuses_a_subset_of_roles_in_one_line(tmp_path: Path) -> None:
    proc = Proc(
        "w", tmp_path, {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'app.db'}"}, "serve", "--roles", "workers"
    )
    await proc.start()
    assert await proc.finished() == 2
    assert proc.log() == (
        "Cannot run only workers on SQLite. SQLite allows one process with all roles (python -m bots); "
        "to split roles over several processes, set DATABASE_URL to a PostgreSQL database.\n"
    )


async def test_an_unknown_role_is_one_line(tmp_path: Path) -> None:
    proc = await Proc("w", tmp_path, {}, "serve", "--roles", "workers,painters").start()
    assert await proc.finished() == 2
    assert proc.log() == "Unknown role painters; the roles are messengers, workers, scheduler, senders.\n"


async def test_sqlite_refuses_a_second_process_on_one_database(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'app.db'}"}
    first = await Proc("first", tmp_path, env).start()  # the console chat, waiting for its input
    try:
        await until(lambda: asyncio.to_thread(lock_taken, tmp_path / "app.db.process-lock"), within=30)
        second = await Proc("second", tmp_path, env).start()
        assert await second.finished() == 2
        assert second.log().startswith(
            f"Another process (pid {first.process.pid}) already runs on {tmp_path / 'app.db'}."
        )
        assert "SQLite allows one process with all roles" in second.log()
        assert first.process.returncode is None
    finally:
        await first.kill()
    # The kernel let go of the lock with the killed process: a restart runs.
    again = await Proc("again", tmp_path, env).start()
    try:
        await until(lambda: asyncio.to_thread(lock_taken, tmp_path / "app.db.process-lock", again), within=30)
    finally:
        await again.kill()


def lock_taken(path: Path, proc: Proc | None = None) -> bool:
    if not path.exists():
        return False
    written = path.read_text().strip()
    return bool(written) and (proc is None or written == str(proc.process.pid))


async def test_the_migration_keeps_running_jobs_and_they_can_be_taken_over(own_db: str, tmp_path: Path) -> None:
    from core.migrate import upgrade

    engine = create_engine(own_db)
    try:
        await upgrade(engine, "0007")
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO people (id, handle, display_name, bio, created_at)"
                    " VALUES (1, 'ada', 'Ada', '', CURRENT_TIMESTAMP)"
                )
            )
            await conn.execute(
                text(
                    "INSERT INTO generation_jobs (idempotency_key, person_id, prompt, seed, aspect, visibility,"
                    " status, attempts, not_before, worker, created_at)"
                    " VALUES ('k1', 1, 'fox', 1, '1:1', 'public', 'running', 1, CURRENT_TIMESTAMP, 'w-old',"
                    " CURRENT_TIMESTAMP)"
                )
            )
        await upgrade(engine, "head")
    finally:
        await engine.dispose()
    settings = Settings(_env_file=None, database_url=own_db, media_dir=tmp_path / "m", image_backend="local")
    core = await bootstrap(settings)
    try:
        job = await core.queue._claim()  # a job from before leases has none: it is taken over
        assert job is not None and job.prompt == "fox" and job.attempts == 2 and job.lease_until is not None
    finally:
        await core.aclose()


def process(name: str, tmp_path: Path, own_db: str, roles: str, **env: str) -> Proc:
    settings = {"DATABASE_URL": own_db, "SCHEDULER_TICK_SECONDS": "1", "HEARTBEAT_SECONDS": "0.3"} | env
    return Proc(name, tmp_path / name, settings, "serve", "--roles", roles)


async def advisory_locks(db: AsyncEngine) -> int:
    async with db.connect() as conn:
        return int(
            await conn.scalar(
                text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                    " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                )
            )
        )


async def leaders(db: AsyncEngine, lead: str) -> list[int]:
    """The pids of live processes that say they hold `lead`."""
    from core.db import create_sessionmaker
    from core.health import health

    report = await health(create_sessionmaker(db))
    return [p.pid for p in report.processes if p.alive and lead in p.leads]


@needs_postgres
async def test_two_schedulers_have_one_leader_and_the_other_takes_over_when_it_dies(
    own_db: str, db: AsyncEngine, tmp_path: Path
) -> None:
    one = await process("s1", tmp_path, own_db, "scheduler").start()
    two = process("s2", tmp_path, own_db, "scheduler")
    try:
        await until(lambda: has_leader(db, "scheduler"), within=30)
        await two.start()
        await until(lambda: beats(db, 2), within=30)
        await asyncio.sleep(2.5)  # a few ticks: the second tries, and fails, to lead
        assert await leaders(db, "scheduler") == [one.process.pid]
        assert await advisory_locks(db) == 1
        assert "holds the scheduler lock" not in two.log()
        await one.kill()
        killed = time.monotonic()
        await until(lambda: has_leader(db, "scheduler", two), within=10)
        assert time.monotonic() - killed < 1 + 1  # within one tick (1 s), give or take a heartbeat
        assert await advisory_locks(db) == 1
    finally:
        await one.stop()
        await two.stop()


async def has_leader(db: AsyncEngine, lead: str, proc: Proc | None = None) -> bool:
    """Whether `python -m bots status` shows a leader for `lead` (proc, if given)."""
    from core.db import create_sessionmaker
    from core.health import health

    try:
        report = await health(create_sessionmaker(db))
    except ProgrammingError:  # the first process has not made the tables yet
        return False
    holder = report.scheduler_leader if lead == "scheduler" else report.senders.get(lead.removeprefix("outbox:"))
    pids = {p.id: p.pid for p in report.processes}
    return holder is not None and (proc is None or pids[holder] == proc.process.pid)


async def beats(db: AsyncEngine, count: int) -> bool:
    from core.models import ProcessBeat

    try:
        async with db.connect() as conn:
            return await conn.scalar(select(func.count()).select_from(ProcessBeat)) == count
    except ProgrammingError:  # the first process has not made the tables yet
        return False


@needs_postgres
async def test_two_sender_processes_deliver_each_row_once_and_together_keep_the_rate(
    own_db: str, db: AsyncEngine, tmp_path: Path
) -> None:
    from core import outbox
    from core.db import create_sessionmaker
    from tests.fakes.telegram_api import FakeTelegramAPI

    rate, rows = 20, 2 * outbox.BATCH + 20  # more than one batch: both processes would claim some
    # The platform allows a little more than the configured rate (as Telegram allows 30 a second to
    # our 25): the outbox may catch up a late slot, so a second holds at most rate + 2 (core.outbox).
    async with FakeTelegramAPI(token="123456:" + "T" * 35, flood_limit=rate + 2) as api:
        env = {
            "TELEGRAM_BOT_TOKEN": api.token,
            "TELEGRAM_API_BASE_URL": api.url,
            "TELEGRAM_MESSAGES_PER_SECOND": str(rate),
        }
        one = await process("o1", tmp_path, own_db, "senders", **env).start()
        two = await process("o2", tmp_path, own_db, "senders", **env).start()
        try:
            await until(lambda: beats(db, 2), within=30)
            sessions = create_sessionmaker(db)
            async with sessions() as session:
                for n in range(rows):  # one chat each: only the overall rate paces them
                    await outbox.add(
                        session,
                        key=f"t{n}",
                        platform="telegram",
                        chat_id=str(1000 + n),
                        kind="text",
                        payload={"text": f"note {n}"},
                    )
                await session.commit()

            async def all_sent() -> bool:
                return len([c for c in api.calls_of("sendMessage") if c.status == 200]) >= rows

            await until(all_sent, within=60)
            await asyncio.sleep(1.0)  # a duplicate would show up now
            senders = await leaders(db, "outbox:telegram")
        finally:
            await one.stop()
            await two.stop()
    sent = [c for c in api.calls_of("sendMessage") if c.status == 200]
    assert sorted(c.chat_id for c in sent) == sorted(str(1000 + n) for n in range(rows))  # each row once
    assert not [c for c in api.calls_of("sendMessage") if c.status == 429]
    pace = (len(sent) - 1) / (sent[-1].at - sent[0].at)
    assert pace <= rate * 1.02, pace
    assert len(senders) == 1


async def test_status_shows_the_processes_the_leaders_the_queue_and_the_backlog(own_db: str, tmp_path: Path) -> None:
    """`python -m bots status` beside a running process: its row, what it leads, and the backlogs."""
    from core import outbox
    from core.db import create_sessionmaker
    from core.health import Heartbeat

    await enqueue(own_db, tmp_path, people=1, each=1)
    engine = create_engine(own_db)
    sessions = create_sessionmaker(engine)
    async with sessions() as session:
        await outbox.add(session, key="t1", platform="telegram", chat_id="1", kind="text", payload={"text": "hi"})
        await session.commit()
    beat = Heartbeat(sessions, "workers,scheduler", lambda: ["scheduler", "outbox:telegram"])
    await beat.start()
    try:
        status = await Proc("status", tmp_path, {"DATABASE_URL": own_db}, "status").start()
        assert await status.finished() == 0
    finally:
        await beat.stop()
        await engine.dispose()
    shown = status.log()
    assert "Processes (1 alive):" in shown
    assert f"{beat.id} [workers,scheduler]" in shown and "leads scheduler, outbox:telegram" in shown
    assert f"Scheduler leader: {beat.id}" in shown
    assert f"Outbox senders: telegram: {beat.id}" in shown
    assert "Generation queue: 1 queued, 0 running, oldest queued " in shown
    assert "Outbox backlog: telegram: 1" in shown


@needs_postgres
async def test_a_senders_only_process_sends_the_discord_outbox_without_a_gateway_connection(
    own_db: str, db: AsyncEngine, tmp_path: Path
) -> None:
    """Senders apart from the front-ends: Discord's REST API needs no gateway (bots/discord/app.py)."""
    from core import outbox
    from core.db import create_sessionmaker
    from tests.fakes.discord_api import FakeDiscord

    async with FakeDiscord() as api:
        env = {"DISCORD_BOT_TOKEN": api.token, "DISCORD_API_BASE_URL": api.api_base}
        sender = await process("d1", tmp_path, own_db, "senders", **env).start()
        try:
            await until(lambda: has_leader(db, "outbox:discord", sender), within=30)
            async with create_sessionmaker(db)() as session:
                await outbox.add(
                    session, key="d1", platform="discord", chat_id=api.general.id, kind="text", payload={"text": "hi"}
                )
                await session.commit()
            sent = await api.wait_for("POST /channels/{channel_id}/messages", seconds=30)
            await asyncio.sleep(0.5)  # a repeat would show up now
        finally:
            await sender.stop()
        assert sent.status == 200 and sent.body == sent.body | {"content": "hi"}, sender.log()
        assert len(api.calls_of("POST /channels/{channel_id}/messages")) == 1
        assert api.gateway.query == [] and not api.calls_of("GET /gateway/bot")  # no gateway connection
        assert "Traceback" not in sender.log()


@needs_postgres
async def test_two_discord_processes_split_the_shards_and_each_answers_its_guilds(
    own_db: str, db: AsyncEngine, tmp_path: Path
) -> None:
    """DISCORD_SHARD_IDS 0 and 1 of DISCORD_SHARD_COUNT=2, one front-end process each: the fake
    gateway sends a guild's interactions only to its shard ((guild_id >> 22) % 2)."""
    from tests.fakes.discord_api import FakeDiscord

    callback = "POST /interactions/{interaction_id}/{interaction_token}/callback"
    async with FakeDiscord() as api:
        rooms = [api.add_channel(f"room{n}", api.add_guild(f"G{n}", shard=(n, 2))) for n in (0, 1)]
        env = {"DISCORD_BOT_TOKEN": api.token, "DISCORD_API_BASE_URL": api.api_base, "DISCORD_SHARD_COUNT": "2"}
        fronts = [
            await process(f"f{n}", tmp_path, own_db, "messengers", DISCORD_SHARD_IDS=str(n), **env).start()
            for n in (0, 1)
        ]
        try:
            async with asyncio.timeout(30):
                while len(api.gateway.shards) < 2 or None not in api.commands:  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)  # both shards past GUILD_CREATE
            for n, room in enumerate(rooms):
                pushed = await api.slash("start", api.add_user(f"user{n}"), room)
                await api.wait_for(callback, lambda c, p=pushed: c.params["interaction_id"] == p.id, seconds=15)
                assert f"@user{n}" in pushed.original["content"]
            await asyncio.sleep(0.5)  # a second answer would be here
        finally:
            for front in fronts:
                await front.stop()
        assert sorted(tuple(i["shard"]) for i in api.gateway.identified) == [(0, 2), (1, 2)]
        assert len(api.calls_of(callback)) == 2 and all(c.status < 300 for c in api.calls_of(callback))
        assert not any("Traceback" in front.log() for front in fronts), fronts[0].log() + fronts[1].log()
