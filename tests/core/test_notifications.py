"""Notifications: follows, likes and remixes told in batches, at most one message per interval, on
the platform where the person was last active, outside their quiet hours; /notify."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from core import scheduler
from core.app import Core, bootstrap
from core.config import Settings
from core.feed import notifications
from core.feed.notifications import Event, batch_pass, summarise
from core.models import Identity, Notification, utcnow
from tests.fakes.platform import FakeMessenger, add_post, chat_of, deliveries, person_id, set_person
from tests.support import Chat

T0 = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)  # noon in UTC, outside the default quiet hours


async def told(chat: Chat, now: datetime) -> int:
    """Run a batch pass at `now`; returns how many summaries it queued."""
    return await batch_pass(chat.core.sessions, chat.core.settings, now)


async def delivered(chat: Chat, messenger: FakeMessenger | None = None) -> FakeMessenger:
    """Send what is queued; a new console messenger is registered unless one (already registered) is given."""
    if messenger is None:
        messenger = FakeMessenger()
        chat.core.register_messenger(messenger)
    chat.core.outbox.wake()
    async with asyncio.timeout(10):
        await chat.core.drain()
    return messenger


async def pending_events(chat: Chat) -> int:
    async with chat.core.sessions() as session:
        found = await session.scalar(
            select(func.count()).select_from(Notification).where(Notification.batched_at.is_(None))
        )
    return int(found or 0)


async def bobs_post(chat: Chat, *fans: str) -> int:
    for handle in ("bob", *fans):
        await chat.say(handle, "/start")
    return await add_post(chat.core, "bob", utcnow() - timedelta(hours=1))


async def test_a_follow_a_like_and_a_remix_come_in_one_message(chat: Chat) -> None:
    post = await bobs_post(chat, "alice", "carol", "dave")
    await chat.say("alice", "/follow bob")
    await chat.say("carol", f"/like {post}")
    job = await chat.finish(await chat.say("dave", f"/remix {post} the same, at night"))
    assert job.status == "done"
    assert await told(chat, T0) == 1
    messenger = await delivered(chat)
    [message] = messenger.to(chat_of("bob"))
    assert message.text.splitlines() == [
        f"🔔 @dave remixed #{post}",
        f"🔔 @carol liked #{post}",
        "🔔 @alice followed you",
    ]
    assert [(b.label, b.action) for row in message.buttons for b in row] == [(f"#{post}", f"post {post}")]
    # Nobody else had news; dave gets the remix he asked for (no progress message was shown for it).
    assert messenger.counts() == {chat_of("bob"): 1, chat_of("dave"): 1}
    assert [r.post_id for r in messenger.to(chat_of("dave"))] == [job.post_id]
    assert await told(chat, T0 + timedelta(hours=1)) == 0  # told once


async def test_many_likes_on_one_post_are_summarised(chat: Chat) -> None:
    fans = ["fan_a", "fan_b", "fan_c", "fan_d"]
    post = await bobs_post(chat, *fans)
    other = await add_post(chat.core, "bob", utcnow())
    for fan in fans:
        await chat.say(fan, f"/like {post}")
    await chat.say("fan_a", f"/like {other}")
    await chat.say("fan_b", f"/like {other}")
    assert await told(chat, T0) == 1
    [message] = (await delivered(chat)).to(chat_of("bob"))
    assert message.text.splitlines() == [
        f"🔔 @fan_b and @fan_a liked #{other}",
        f"🔔 @fan_d and 3 others liked #{post}",
    ]


def test_summaries_name_the_newest_first_and_count_people_once() -> None:
    events = [Event("like", "ann", 12), Event("like", "bo", 12), Event("like", "ann", 12), Event("follow", "cy", None)]
    assert summarise(events) == ["@cy followed you", "@ann and @bo liked #12"]
    assert summarise([Event("remix", "ann", 3)]) == ["@ann remixed #3"]
    many = [Event("follow", f"p{i}", None) for i in range(6)]
    assert summarise(many) == ["@p5 and 5 others followed you"]


async def test_at_most_one_message_per_interval(chat: Chat) -> None:
    post = await bobs_post(chat, "carol", "dave", "erin")
    await chat.say("carol", f"/like {post}")
    assert await told(chat, T0) == 1
    await chat.say("dave", f"/like {post}")
    await chat.say("erin", "/follow bob")
    assert await told(chat, T0 + timedelta(minutes=5)) == 0
    assert await told(chat, T0 + timedelta(minutes=14, seconds=59)) == 0
    assert await pending_events(chat) == 2  # waiting, not lost
    assert await told(chat, T0 + timedelta(minutes=15)) == 1
    messages = (await delivered(chat)).to(chat_of("bob"))
    assert [m.text for m in messages] == [
        f"🔔 @carol liked #{post}",
        f"🔔 @erin followed you\n🔔 @dave liked #{post}",
    ]


async def test_quiet_hours_hold_notifications_in_the_persons_own_time_zone(chat: Chat) -> None:
    post = await bobs_post(chat, "carol")
    await chat.say("ann", "/start")
    await chat.say("bob", "/digest 09:00 Europe/Berlin")  # quiet 22:00-08:00 Berlin time
    await chat.say("carol", f"/like {post}")
    await chat.say("carol", "/follow ann")  # ann keeps UTC
    night = datetime(2026, 1, 10, 22, 30, tzinfo=UTC)  # 23:30 in Berlin, 22:30 UTC
    assert await told(chat, night) == 0
    assert await told(chat, datetime(2026, 1, 11, 6, 59, tzinfo=UTC)) == 0  # 07:59 in Berlin
    assert await pending_events(chat) == 2
    assert await told(chat, datetime(2026, 1, 11, 7, 0, tzinfo=UTC)) == 1  # 08:00 in Berlin, 07:00 UTC
    messenger = await delivered(chat)
    assert messenger.counts() == {chat_of("bob"): 1}
    assert await told(chat, datetime(2026, 1, 11, 8, 0, tzinfo=UTC)) == 1  # 08:00 UTC: ann's turn
    assert (await delivered(chat, messenger)).to(chat_of("ann"))[0].text == "🔔 @carol followed you"


async def test_notify_off_stops_them_and_on_starts_them_again(chat: Chat) -> None:
    post = await bobs_post(chat, "carol", "dave")
    await chat.say("bob", "/notify off")
    await chat.say("carol", f"/like {post}")
    assert await told(chat, T0) == 0
    assert await pending_events(chat) == 0  # not kept to be told later
    await chat.say("bob", "/notify on")
    assert await told(chat, T0 + timedelta(hours=1)) == 0
    await chat.say("dave", f"/like {post}")
    assert await told(chat, T0 + timedelta(hours=2)) == 1
    [message] = (await delivered(chat)).to(chat_of("bob"))
    assert message.text == f"🔔 @dave liked #{post}"


async def test_nobody_is_notified_of_their_own_actions(chat: Chat) -> None:
    post = await bobs_post(chat)
    await chat.say("bob", f"/like {post}")
    job = await chat.finish(await chat.say("bob", f"/remix {post} my own variation"))
    assert job.status == "done"
    assert "can't follow yourself" in await chat.text("bob", "/follow bob")
    assert await pending_events(chat) == 0
    assert await told(chat, T0) == 0


async def test_a_private_remix_is_not_told(chat: Chat) -> None:
    post = await bobs_post(chat, "dave")
    job = await chat.finish(await chat.say("dave", f"/remix {post} for my eyes only --private"))
    assert job.status == "done"
    assert await pending_events(chat) == 0  # bob cannot see it, so he is not told of it
    job = await chat.finish(await chat.say("dave", f"/remix {post} for everyone"))
    assert await told(chat, T0) == 1
    [message] = (await delivered(chat)).to(chat_of("bob"))
    assert message.text == f"🔔 @dave remixed #{post}"


async def test_an_unlike_or_unfollow_before_the_batch_takes_the_news_back(chat: Chat) -> None:
    post = await bobs_post(chat, "carol", "dave")
    await chat.say("carol", f"/like {post}")
    await chat.say("carol", f"/like {post}")  # pressed again: the like is taken back
    await chat.say("dave", "/follow bob")
    await chat.say("dave", "/unfollow bob")
    assert await told(chat, T0) == 0
    messenger = await delivered(chat)
    assert messenger.sent == []

    # A like that was already told stays told; the unlike sends nothing.
    await chat.say("carol", f"/like {post}")
    assert await told(chat, T0 + timedelta(hours=1)) == 1
    await chat.say("carol", f"/like {post}")
    assert await told(chat, T0 + timedelta(hours=2)) == 0
    assert [m.text for m in (await delivered(chat, messenger)).to(chat_of("bob"))] == [f"🔔 @carol liked #{post}"]


async def test_news_about_a_post_deleted_before_the_batch_is_dropped(chat: Chat) -> None:
    post = await bobs_post(chat, "carol")
    await chat.say("carol", f"/like {post}")
    assert "Deleted" in await chat.text("bob", f"/delete {post}")
    assert await told(chat, T0) == 0
    assert await deliveries(chat.core) == []


async def test_notifications_go_to_the_platform_where_the_person_was_last_active(chat: Chat) -> None:
    post = await bobs_post(chat, "carol")
    bob = await person_id(chat.core, "bob")
    async with chat.core.sessions() as session:
        session.add(
            Identity(
                person_id=bob,
                platform="telegram",
                platform_user_id="77",
                chat_id="tg-77",
                last_seen_at=utcnow() + timedelta(minutes=1),
            )
        )
        await session.commit()
    await chat.say("carol", f"/like {post}")
    assert await told(chat, T0) == 1
    telegram = FakeMessenger(platform="telegram")
    chat.core.register_messenger(telegram)
    console = await delivered(chat)
    assert [m.text for m in telegram.to("tg-77")] == [f"🔔 @carol liked #{post}"]
    assert console.sent == []


async def test_someone_who_blocked_the_bot_is_not_told(chat: Chat) -> None:
    post = await bobs_post(chat, "carol")
    async with chat.core.sessions() as session:
        identity = await session.scalar(select(Identity).where(Identity.chat_id == chat_of("bob")))
        assert identity is not None
        identity.unreachable = True
        await session.commit()
    await chat.say("carol", f"/like {post}")
    assert await told(chat, T0) == 0
    assert await pending_events(chat) == 0
    assert await deliveries(chat.core) == []


async def test_many_people_are_each_told_once_in_one_pass(chat: Chat) -> None:
    await chat.say("star", "/start")
    fans = [f"fan{i:02d}" for i in range(12)]
    for fan in fans:
        await chat.say(fan, "/follow star")
        await chat.say("star", f"/follow {fan}")
    assert await told(chat, T0) == 13
    messenger = await delivered(chat)
    assert messenger.counts() == {chat_of(h): 1 for h in ["star", *fans]}
    [star] = messenger.to(chat_of("star"))
    assert star.text == "🔔 @fan11 and 11 others followed you"


async def test_two_processes_batching_at_once_tell_each_person_once(chat: Chat, settings: Settings) -> None:
    post = await bobs_post(chat, "carol", "dave")
    for i in range(6):
        await chat.say(f"fan{i}", "/follow carol")
    other = await bootstrap(settings)
    try:
        await chat.say("carol", f"/like {post}")
        queued = await asyncio.gather(
            batch_pass(chat.core.sessions, settings, T0), batch_pass(other.sessions, settings, T0)
        )
        assert sum(queued) >= 2
        messenger = await delivered(chat)
        assert messenger.counts() == {chat_of("bob"): 1, chat_of("carol"): 1}
    finally:
        await other.aclose()


async def test_news_arriving_while_another_process_batches_is_not_told_twice(
    chat: Chat, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    post = await bobs_post(chat, "carol", "dave")
    await chat.say("carol", f"/like {post}")
    # The first pass reads bob's news, then stalls (a slow process) before writing anything.
    read, resume = asyncio.Event(), asyncio.Event()
    real_pending = notifications._pending

    async def stalling(session, recipients):  # type: ignore[no-untyped-def]
        found = await real_pending(session, recipients)
        if not read.is_set():
            read.set()
            await resume.wait()
        return found

    monkeypatch.setattr(notifications, "_pending", stalling)
    slow = asyncio.create_task(batch_pass(chat.core.sessions, settings, T0))
    await read.wait()
    # Meanwhile dave likes too, and a second process runs its pass to the end.
    await chat.say("dave", f"/like {post}")
    assert await batch_pass(chat.core.sessions, settings, T0 + timedelta(seconds=1)) == 1
    resume.set()
    await slow
    messages = (await delivered(chat)).to(chat_of("bob"))
    assert [m.text for m in messages] == [f"🔔 @dave and @carol liked #{post}"]


# --- with other settings: no quiet hours, a 5-minute interval --------------------------------------------


@pytest.fixture
async def relaxed(core: Core, settings: Settings) -> AsyncIterator[Chat]:
    app = await bootstrap(settings.model_copy(update={"quiet_hours": "", "notify_interval_minutes": 5}))
    await app.start()
    try:
        yield Chat(app)
    finally:
        await app.aclose()


async def test_without_quiet_hours_the_scheduled_tick_tells_people_at_any_hour(relaxed: Chat) -> None:
    post = await bobs_post(relaxed, "carol")
    await relaxed.say("carol", f"/like {post}")
    await set_person(relaxed.core, "bob", timezone="Pacific/Auckland")
    messenger = FakeMessenger()
    relaxed.core.register_messenger(messenger)
    await scheduler.notification_tick(relaxed.core)  # now, whatever the hour
    async with asyncio.timeout(10):
        await relaxed.core.drain()
    assert [m.text for m in messenger.to(chat_of("bob"))] == [f"🔔 @carol liked #{post}"]
    await relaxed.say("carol", "/follow bob")
    assert await batch_pass(relaxed.core.sessions, relaxed.core.settings, utcnow() + timedelta(minutes=4)) == 0
    assert await batch_pass(relaxed.core.sessions, relaxed.core.settings, utcnow() + timedelta(minutes=5)) == 1


async def test_notify_command_texts(chat: Chat, relaxed: Chat) -> None:
    assert await chat.text("ann", "/notify") == (
        "Notifications are on: at most one message every 15 minutes, and none during quiet hours "
        "(22:00-08:00, your time). Turn them off with /notify off."
    )
    assert await chat.text("ann", "/notify OFF") == "Notifications are off. Turn them on with /notify on."
    assert await chat.text("ann", "/notify") == "Notifications are off. Turn them on with /notify on."
    assert (await chat.text("ann", "/notify on")).startswith("Notifications are on")
    # An unknown choice names the parameter, then the usage (issue 8: one clear line).
    assert await chat.text("ann", "/notify sometimes") == (
        "Unknown setting 'sometimes'. Use one of: on, off. Usage: /notify on or /notify off"
    )
    assert await relaxed.text("bea", "/notify") == (
        "Notifications are on: at most one message every 5 minutes. Turn them off with /notify off."
    )
