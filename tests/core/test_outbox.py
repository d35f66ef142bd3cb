"""The outbox: each row delivered once across crashes, restarts and two processes; pacing, RetryLater,
unreachable people and sends whose outcome is unknown."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta

import pytest
from sqlalchemy import update

from core import outbox, scheduler
from core.app import Core, bootstrap
from core.config import Settings
from core.feed.digest import compose_pass
from core.messenger import DeliveryUncertain, RetryLater, Unreachable
from core.models import Delivery, Person, Post, utcnow
from tests.fakes.platform import FakeMessenger, add_post, chat_of, deliveries, identity, person_id
from tests.support import Chat

MakeCore = Callable[..., Awaitable[Core]]


@pytest.fixture
async def make_core(core: Core, settings: Settings) -> AsyncIterator[MakeCore]:
    """More processes on the test database; closed before `core` empties the tables."""
    made: list[Core] = []

    async def build(*messengers: FakeMessenger, start: bool = True) -> Core:
        app = await bootstrap(settings)
        app.outbox.poll_seconds = 0.05
        for messenger in messengers:
            app.register_messenger(messenger)
        if start:
            await app.start()
        made.append(app)
        return app

    yield build
    for app in made:
        await app.aclose()


async def queue_texts(core: Core, chats: list[str], platform: str = "console") -> None:
    async with core.sessions() as session:
        for chat_id in chats:
            await outbox.add(
                session,
                key=f"test:{chat_id}",
                platform=platform,
                chat_id=chat_id,
                kind="text",
                payload={"text": f"hello {chat_id}"},
            )
        await session.commit()


async def drained(core: Core, seconds: float = 15) -> None:
    core.outbox.wake()
    async with asyncio.timeout(seconds):
        await core.drain()


async def statuses(core: Core) -> dict[str, str]:
    return {d.chat_id: d.status for d in await deliveries(core)}


async def wait_until(condition: Callable[[], bool], seconds: float = 10) -> None:
    async with asyncio.timeout(seconds):
        while not condition():  # noqa: ASYNC110 (the fake platform has no event to wait on)
            await asyncio.sleep(0.01)


async def a_network_with_digests(chat: Chat, readers: int) -> list[str]:
    handles = [f"reader{i:02d}" for i in range(readers)]
    await chat.say("alice", "/start")
    for handle in handles:
        await chat.say(handle, "/follow alice")
    await add_post(chat.core, "alice", utcnow() - timedelta(hours=1), likes=2)
    stats = await compose_pass(chat.core.sessions, chat.core.settings, utcnow(), force=True)
    assert stats.queued == readers  # alice's own post is all there is: she has no digest
    return handles


async def test_a_crash_in_mid_run_resumes_with_no_gap_and_no_duplicate(chat: Chat, make_core: MakeCore) -> None:
    handles = await a_network_with_digests(chat, 30)
    # The first process dies just after the platform took its 7th digest, before writing that down.
    platform = FakeMessenger(crash_after=7)
    first = await make_core(platform)
    await wait_until(lambda: len(platform.sent) == 7)
    await asyncio.sleep(0.3)
    assert len(platform.sent) == 7  # it is dead: nothing more went out
    await first.outbox.release_locks()  # its connections die with it, and its sender lock
    in_flight = platform.sent[-1].chat_id

    # The operator restarts it later, on the same database.
    async with first.sessions() as session:
        await session.execute(
            update(Delivery)
            .where(Delivery.claimed_at.is_not(None))
            .values(claimed_at=utcnow() - outbox.LEASE - timedelta(minutes=1))
        )
        await session.commit()
    second = await make_core(platform)
    await drained(second)

    assert platform.counts() == {chat_of(h): 1 for h in handles}  # everyone once: no gap, no duplicate
    final = await statuses(second)
    # The one whose outcome the crash hid is marked, not repeated; every other row is sent.
    assert final.pop(in_flight) == "uncertain"
    assert {final[chat_of(h)] for h in handles if chat_of(h) != in_flight} == {"sent"}


async def test_rows_a_killed_process_had_claimed_are_sent_within_seconds_of_a_restart(
    chat: Chat, make_core: MakeCore
) -> None:
    handles = await a_network_with_digests(chat, 20)
    platform = FakeMessenger(crash_after=3)
    first = await make_core(platform)  # killed in mid-batch: the rest of its batch stays claimed
    await wait_until(lambda: len(platform.sent) == 3)
    await first.outbox.release_locks()  # its connections die with it, and its sender lock
    in_flight = platform.sent[-1].chat_id
    restarted = asyncio.get_running_loop().time()
    second = await make_core(platform)
    await drained(second, seconds=12)  # "within seconds": a lease of a few seconds, not minutes
    assert asyncio.get_running_loop().time() - restarted < 12
    assert platform.counts() == {chat_of(h): 1 for h in handles}
    final = await statuses(second)
    assert final.pop(in_flight) == "uncertain"  # the one on the wire when it died: not repeated
    assert {final[chat_of(h)] for h in handles if chat_of(h) != in_flight} == {"sent"}


async def test_a_running_process_takes_over_what_a_crashed_one_left_without_a_restart(
    chat: Chat, make_core: MakeCore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outbox, "LEASE", timedelta(seconds=0.5))
    monkeypatch.setattr(outbox, "RENEW_SECONDS", 0.1)
    handles = await a_network_with_digests(chat, 25)
    platform = FakeMessenger(crash_after=4)
    survivor = await make_core(start=False)
    crashed = await make_core(platform)  # takes the first batch, and dies in it
    await wait_until(lambda: len(platform.sent) == 4)
    await crashed.outbox.release_locks()  # its connections die with it, and its sender lock
    survivor.register_messenger(platform)
    await survivor.start()
    await wait_until(lambda: len(platform.sent) == len(handles))
    await drained(survivor)
    assert platform.counts() == {chat_of(h): 1 for h in handles}
    final = await statuses(survivor)
    assert final[platform.sent[3].chat_id] == "uncertain"


async def test_a_stop_between_sends_leaves_the_rest_for_the_next_process(chat: Chat, make_core: MakeCore) -> None:
    handles = await a_network_with_digests(chat, 12)
    platform = FakeMessenger(rate_per_second=40)
    first = await make_core(platform)
    await wait_until(lambda: len(platform.sent) >= 3)
    await first.outbox.stop()
    stopped_at = len(platform.sent)
    assert stopped_at < len(handles)
    second = await make_core(platform)
    await drained(second)
    assert platform.counts() == {chat_of(h): 1 for h in handles}
    final = await statuses(second)
    assert {final[chat_of(h)] for h in handles} == {"sent"}


async def test_two_processes_sending_at_once_deliver_each_row_once(core: Core, make_core: MakeCore) -> None:
    chats = [f"chat-{i:02d}" for i in range(40)]
    await queue_texts(core, chats)
    one, two = FakeMessenger(delay=0.005), FakeMessenger(delay=0.005)
    # Built one after the other (alembic's proxies are per interpreter), started together.
    first, second = await make_core(one, start=False), await make_core(two, start=False)
    await asyncio.gather(first.start(), second.start())
    await asyncio.gather(drained(first), drained(second))
    together = one.counts() + two.counts()
    assert together == {chat_id: 1 for chat_id in chats}
    assert set((await statuses(core)).values()) == {"sent"}


async def test_retry_later_pauses_the_platform_then_delivers_once(core: Core, make_core: MakeCore) -> None:
    await queue_texts(core, ["chat-a", "chat-b", "chat-c"])
    platform = FakeMessenger(failures={"chat-a": [RetryLater(0.4)]})
    app = await make_core(platform)
    await drained(app)
    assert platform.counts() == {"chat-a": 1, "chat-b": 1, "chat-c": 1}
    refused_at = platform.attempts[0][1]
    assert platform.attempts[0][0] == "chat-a"
    # Nothing at all went to the platform during the pause it asked for.
    assert all(at - refused_at >= 0.38 for _, at in platform.attempts[1:]), platform.attempts
    rows = {d.chat_id: d for d in await deliveries(core)}
    assert rows["chat-a"].status == "sent" and rows["chat-a"].attempts == 1  # a 429 is not a failed attempt


async def test_sends_are_paced_to_the_platforms_rate(core: Core, make_core: MakeCore) -> None:
    chats = [f"chat-{i}" for i in range(8)]
    await queue_texts(core, chats)
    platform = FakeMessenger(rate_per_second=20)
    app = await make_core(platform)
    await drained(app)
    times = [s.at for s in platform.sent]
    assert len(times) == 8
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # One every 1/20 s, no burst. The limiter spaces the slots; the database write between a slot and
    # its send varies by a few milliseconds (more on a loaded machine), so single gaps may be shorter;
    # a burst would show gaps near zero.
    assert min(gaps) >= 0.025, gaps
    assert times[-1] - times[0] >= 7 * 0.05 * 0.9, gaps


async def test_a_slow_platform_keeps_the_pace_with_sends_in_flight_together(core: Core, make_core: MakeCore) -> None:
    chats = [f"chat-{i}" for i in range(30)]
    await queue_texts(core, chats)
    # 100 ms per send: one at a time that is 10 a second at most, whatever the rate.
    platform = FakeMessenger(rate_per_second=40, delay=0.1, max_in_flight=8)
    app = await make_core(platform)
    await drained(app)
    assert sorted(s.chat_id for s in platform.sent) == sorted(chats)
    started = sorted(at for _, at in platform.attempts)
    # Still paced, as a platform counts: no half second holds more than its share (plus the limiter's
    # small catch-up; a slot and its send are a few database milliseconds apart, so single gaps vary).
    busiest = max(sum(1 for t in started if s <= t < s + 0.5) for s in started)
    assert busiest <= 0.5 * 40 + 2, started
    assert started[-1] - started[0] < 29 * 0.1 * 0.5  # far faster than one at a time


async def test_sends_to_one_chat_never_overlap_and_keep_their_order(core: Core, make_core: MakeCore) -> None:
    await queue_texts(core, ["chat-x"])
    async with core.sessions() as session:
        for n in range(2, 5):
            await outbox.add(
                session, key=f"test:x{n}", platform="console", chat_id="chat-x", kind="text", payload={"text": f"x{n}"}
            )
        await session.commit()
    platform = FakeMessenger(rate_per_second=1000, delay=0.05, max_in_flight=8)
    app = await make_core(platform)
    await drained(app)
    assert [r.text for r in platform.to("chat-x")] == ["hello chat-x", "x2", "x3", "x4"]
    starts = [at for _, at in platform.attempts]
    assert all(b - a >= 0.045 for a, b in itertools.pairwise(starts))  # each began after the last one ended


async def test_each_platform_is_paced_on_its_own(core: Core, make_core: MakeCore) -> None:
    await queue_texts(core, ["slow-1", "slow-2", "slow-3"], platform="telegram")
    await queue_texts(core, [f"fast-{i}" for i in range(10)])
    slow, fast = FakeMessenger(platform="telegram", rate_per_second=1), FakeMessenger(rate_per_second=1000)
    app = await make_core(slow, fast)
    await drained(app)
    assert len(fast.sent) == 10 and len(slow.sent) == 3
    assert fast.sent[-1].at < slow.sent[-1].at - 0.3  # the fast one did not wait for the slow one


async def test_an_uncertain_send_is_marked_and_never_repeated(core: Core, make_core: MakeCore) -> None:
    await queue_texts(core, ["chat-a", "chat-b"])
    platform = FakeMessenger(failures={"chat-a": [DeliveryUncertain("read timeout")]})
    app = await make_core(platform)
    await drained(app)
    again = await make_core(platform)  # a restart does not retry it either
    await drained(again)
    assert [chat_id for chat_id, _ in platform.attempts].count("chat-a") == 1
    rows = {d.chat_id: d for d in await deliveries(core)}
    assert rows["chat-a"].status == "uncertain" and rows["chat-a"].error == "read timeout"
    assert rows["chat-b"].status == "sent"


async def test_a_row_left_sending_by_a_crash_becomes_uncertain_once_stale(core: Core, make_core: MakeCore) -> None:
    await queue_texts(core, ["chat-old", "chat-fresh", "chat-new"])
    async with core.sessions() as session:
        for chat_id, age in (("chat-old", outbox.LEASE + timedelta(seconds=5)), ("chat-fresh", timedelta())):
            await session.execute(
                update(Delivery)
                .where(Delivery.chat_id == chat_id)
                .values(status="sending", claimed_at=utcnow() - age, attempts=1)
            )
        await session.commit()
    platform = FakeMessenger()
    app = await make_core(platform)
    await wait_until(lambda: len(platform.sent) == 1)
    await asyncio.sleep(0.2)
    assert platform.counts() == {"chat-new": 1}
    found = await statuses(core)
    assert found["chat-old"] == "uncertain"  # its sender died while sending: no second try
    assert found["chat-fresh"] == "sending"  # may belong to a live process: left alone
    await app.outbox.stop()


async def test_an_unreachable_person_is_skipped_and_later_messages_to_them_are_dropped(
    chat: Chat, make_core: MakeCore
) -> None:
    for handle in ("ann", "blocker", "cid"):
        await chat.say(handle, "/start")
    blocker = await person_id(chat.core, "blocker")
    async with chat.core.sessions() as session:
        for handle in ("ann", "blocker", "blocker2", "cid"):
            target = chat_of(handle.removesuffix("2"))
            await outbox.add(
                session,
                key=f"test:{handle}",
                platform="console",
                chat_id=target,
                kind="text",
                payload={"text": f"hi {handle}"},
                person_id=blocker if target == chat_of("blocker") else None,
            )
        await session.commit()
    platform = FakeMessenger(failures={chat_of("blocker"): [Unreachable("blocked")]})
    app = await make_core(platform)
    await drained(app)
    assert platform.counts() == {chat_of("ann"): 1, chat_of("cid"): 1}
    assert [chat_id for chat_id, _ in platform.attempts].count(chat_of("blocker")) == 1  # never tried again
    assert (await identity(chat.core, "blocker")).unreachable
    rows = {d.key: d for d in await deliveries(chat.core)}
    assert rows["test:blocker"].status == rows["test:blocker2"].status == "skipped"
    assert "unreachable" in (rows["test:blocker"].error or "")


async def test_two_bots_started_at_once_compose_and_send_each_digest_once(chat: Chat, make_core: MakeCore) -> None:
    handles = [f"reader{i:02d}" for i in range(30)]
    await chat.say("alice", "/start")
    for handle in handles:
        await chat.say(handle, "/follow alice")
    await add_post(chat.core, "alice", utcnow() - timedelta(hours=1), likes=2)
    async with chat.core.sessions() as session:  # everyone's hour has come
        await session.execute(update(Person).values(digest_time="00:00"))
        await session.commit()
    one, two = FakeMessenger(delay=0.002), FakeMessenger(delay=0.002)
    first, second = await make_core(one, start=False), await make_core(two, start=False)
    await asyncio.gather(first.start(), second.start())
    for _ in range(3):  # a few scheduler ticks in each process
        await asyncio.gather(scheduler.digest_tick(first), scheduler.digest_tick(second), scheduler.digest_tick(first))
    await asyncio.gather(drained(first), drained(second))
    assert one.counts() + two.counts() == {chat_of(h): 1 for h in handles}


async def test_pruning_drops_old_finished_rows_and_keeps_anything_still_in_flight(core: Core) -> None:
    statuses_ = ["pending", "claimed", "sending", "sent", "skipped", "uncertain", "failed"]
    await queue_texts(core, [f"old-{s}" for s in statuses_] + ["new-sent"])
    async with core.sessions() as session:
        for status in statuses_:
            await session.execute(
                update(Delivery)
                .where(Delivery.chat_id == f"old-{status}")
                .values(status=status, created_at=utcnow() - scheduler.KEEP - timedelta(hours=1))
            )
        await session.execute(update(Delivery).where(Delivery.chat_id == "new-sent").values(status="sent"))
        await session.commit()
    await scheduler.prune(core)
    assert sorted(await statuses(core)) == ["new-sent", "old-claimed", "old-pending", "old-sending"]


async def test_a_row_that_cannot_be_rendered_does_not_stop_the_platform(
    chat: Chat, make_core: MakeCore, settings: Settings
) -> None:
    for handle in ("alice", "bob"):
        await chat.say(handle, "/start")
    await chat.say("reader_a", "/follow alice")
    await chat.say("reader_b", "/follow bob")
    broken = await add_post(chat.core, "alice", utcnow() - timedelta(hours=1), colour=(1, 2, 3))
    await add_post(chat.core, "bob", utcnow() - timedelta(hours=2))
    async with chat.core.sessions() as session:
        path = (await session.get(Post, broken)).image_path  # type: ignore[union-attr]
    chat.core.media.path(path).unlink()  # its picture is gone from the disk
    await compose_pass(chat.core.sessions, settings.model_copy(update={"digest_size": 1}), utcnow(), force=True)
    platform = FakeMessenger()
    app = await make_core(platform)
    await wait_until(lambda: chat_of("reader_b") in platform.counts())
    await queue_texts(chat.core, ["later"])  # the sender is still alive after the broken row
    app.outbox.wake()
    await wait_until(lambda: "later" in platform.counts())
    rows = {d.person_id: d for d in await deliveries(chat.core, "digest")}
    failed = rows[await person_id(chat.core, "reader_a")]
    assert failed.status in ("pending", "failed") and failed.error, failed.status
    assert platform.counts()[chat_of("reader_a")] == 0
