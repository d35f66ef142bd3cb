"""Daily digests: what goes in, when (time zones, midnight, daylight saving), once per local day,
the collage picture, delivery through the outbox, and the galleries' best of the day."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from PIL import Image, ImageChops, ImageDraw, ImageFont, ImageStat
from sqlalchemy import update

from core import gallery
from core.app import Core, bootstrap
from core.config import Settings
from core.feed import collage, digest
from core.feed.collage import Tile, collage_size
from core.feed.digest import compose_pass, digest_key
from core.feed.localtime import next_digest
from core.messenger import Unreachable
from core.models import Identity, Post, utcnow
from tests.fakes.platform import (
    FakeMessenger,
    add_post,
    chat_of,
    deliveries,
    identity,
    person_id,
    set_person,
    solid_png,
)
from tests.support import Chat

NOON = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)


@pytest.fixture
async def other_core(core: Core, settings: Settings) -> AsyncIterator[Core]:
    """A second process on the same database (torn down before `core` empties the tables)."""
    second = await bootstrap(settings)
    await second.start()
    try:
        yield second
    finally:
        await second.aclose()


async def people(chat: Chat, *handles: str) -> None:
    for handle in handles:
        await chat.say(handle, "/start")


async def digest_posts(core: Core, handle: str) -> list[int] | None:
    """The posts queued for a person's digest, or None when there is no pending digest row."""
    pid = await person_id(core, handle)
    rows = [d for d in await deliveries(core, "digest") if d.person_id == pid]
    assert len(rows) <= 1, rows
    if not rows or rows[0].status != "pending":
        return None
    return json.loads(rows[0].payload)["posts"]


async def sent_digests(core: Core, messenger: FakeMessenger) -> None:
    core.register_messenger(messenger)
    core.outbox.wake()
    async with asyncio.timeout(15):
        await core.drain()


# --- what goes in -----------------------------------------------------------------------------


async def test_the_digest_has_the_followed_posts_of_the_day_ranked_by_likes_with_time_decay(
    chat: Chat, settings: Settings
) -> None:
    await people(chat, "alice", "bob", "carol", "reader")
    await chat.say("reader", "/follow alice")
    await chat.say("reader", "/follow bob")
    hours = lambda h: NOON - timedelta(hours=h)  # noqa: E731
    recent_liked = await add_post(chat.core, "alice", hours(2), likes=10)
    newest_unliked = await add_post(chat.core, "alice", hours(0.5))
    old_popular = await add_post(chat.core, "alice", hours(20), likes=50)
    await add_post(chat.core, "alice", hours(25), likes=1000)  # older than a day
    await add_post(chat.core, "alice", hours(1), likes=1000, visibility="private")
    bobs = await add_post(chat.core, "bob", hours(3), likes=3)
    await add_post(chat.core, "carol", hours(1), likes=1, visibility="private")

    # By likes alone the 50-like post would lead, by age alone the newest; the decayed score mixes both.
    await compose_pass(chat.core.sessions, settings.model_copy(update={"digest_size": 3}), NOON, force=True)
    assert await digest_posts(chat.core, "reader") == [recent_liked, bobs, old_popular]
    assert newest_unliked not in (await digest_posts(chat.core, "reader") or [])


async def test_fewer_followed_posts_are_topped_up_with_trending_ones_never_your_own(
    chat: Chat, settings: Settings
) -> None:
    await people(chat, "alice", "carol", "dave", "reader")
    await chat.say("reader", "/follow alice")
    followed = await add_post(chat.core, "alice", NOON - timedelta(hours=2), likes=1)
    trending_top = await add_post(chat.core, "carol", NOON - timedelta(hours=1), likes=1000)
    readers = await add_post(chat.core, "reader", NOON - timedelta(hours=1), likes=500)  # hot, but the reader's
    trending_next = await add_post(chat.core, "dave", NOON - timedelta(hours=5), likes=5)
    await add_post(chat.core, "dave", NOON - timedelta(hours=30), likes=5000)  # not today
    await add_post(chat.core, "dave", NOON - timedelta(hours=1), likes=5000, visibility="private")

    stats = await compose_pass(chat.core.sessions, settings, NOON, force=True)
    assert await digest_posts(chat.core, "reader") == [followed, trending_top, trending_next]
    # alice follows nobody: her digest is all trending, without her own post.
    assert await digest_posts(chat.core, "alice") == [trending_top, readers, trending_next]
    assert stats.queued == 4 and stats.empty == 0  # alice, carol, dave and reader


async def test_the_digest_holds_at_most_digest_size_posts(chat: Chat, settings: Settings) -> None:
    await people(chat, "alice", "reader")
    await chat.say("reader", "/follow alice")
    for i in range(9):
        await add_post(chat.core, "alice", NOON - timedelta(hours=i + 1), likes=i)
    await compose_pass(chat.core.sessions, settings, NOON, force=True)
    chosen = await digest_posts(chat.core, "reader")
    assert chosen is not None and len(chosen) == settings.digest_size == 6


async def test_people_in_many_chunks_each_get_one_digest_with_their_own_picks(
    chat: Chat, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunks of two, the next chunk read while the one before is written: nobody is left out or done twice,
    and each chunk's picks stay with its own people."""
    monkeypatch.setattr(digest, "CHUNK", 2)
    readers = [f"reader{i}" for i in range(7)]
    await people(chat, "alice", "bob", *readers)
    by_alice = await add_post(chat.core, "alice", NOON - timedelta(hours=1), likes=2)
    by_bob = await add_post(chat.core, "bob", NOON - timedelta(hours=1), likes=1)
    for i, reader in enumerate(readers):
        await chat.say(reader, "/follow alice" if i % 2 else "/follow bob")
    stats = await compose_pass(chat.core.sessions, settings.model_copy(update={"digest_size": 1}), NOON, force=True)
    assert stats.considered == len(readers) + 2 and stats.queued == len(readers) + 2
    for i, reader in enumerate(readers):
        assert await digest_posts(chat.core, reader) == [by_alice if i % 2 else by_bob], reader


async def test_nothing_new_means_no_digest(chat: Chat, settings: Settings) -> None:
    await people(chat, "alice", "loner")
    await add_post(chat.core, "alice", NOON - timedelta(hours=30), likes=100)  # yesterday's news
    await add_post(chat.core, "loner", NOON - timedelta(hours=1), likes=3)  # only your own
    await add_post(chat.core, "alice", NOON - timedelta(hours=1), visibility="private")
    stats = await compose_pass(chat.core.sessions, settings, NOON, force=True)
    assert stats.queued == 1 and stats.empty == 1  # alice gets the loner's post; the loner nothing
    rows = {d.person_id: d for d in await deliveries(chat.core, "digest")}
    loner = rows[await person_id(chat.core, "loner")]
    assert loner.status == "skipped" and loner.error == "nothing new"
    messenger = FakeMessenger()
    await sent_digests(chat.core, messenger)
    assert chat_of("loner") not in messenger.counts()


# --- when: once per local day, in each person's own time zone ----------------------------------------------


async def digest_days(core: Core, *handles: str) -> dict[str, list[str]]:
    """Each person's digest rows, as the local dates they are for."""
    ids = {await person_id(core, h): h for h in handles}
    days: dict[str, list[str]] = {h: [] for h in handles}
    for row in await deliveries(core, "digest"):
        if row.person_id in ids:
            days[ids[row.person_id]].append(row.key.rsplit(":", 1)[1])
    return days


async def test_time_zones_on_both_sides_of_midnight(chat: Chat, settings: Settings) -> None:
    await chat.say("kiwi", "/digest 09:00 Pacific/Auckland")  # UTC+13 in January
    await chat.say("angeleno", "/digest 09:00 America/Los_Angeles")  # UTC-8
    steps = [
        # (UTC now, the local day whose digest each person gets in that pass)
        (datetime(2026, 1, 9, 16, 59, tzinfo=UTC), {}),  # 05:59 on the 10th in Auckland, 08:59 on the 9th in LA
        (datetime(2026, 1, 9, 17, 0, tzinfo=UTC), {"angeleno": "2026-01-09"}),
        (datetime(2026, 1, 9, 19, 59, tzinfo=UTC), {}),
        # 20:00 UTC on the 9th is 09:00 on the 10th in Auckland, while Los Angeles is still on the 9th
        (datetime(2026, 1, 9, 20, 0, tzinfo=UTC), {"kiwi": "2026-01-10"}),
        (datetime(2026, 1, 10, 0, 0, tzinfo=UTC), {}),  # UTC midnight: 16:00 in LA, 13:00 in Auckland
        (datetime(2026, 1, 10, 8, 0, tzinfo=UTC), {}),  # midnight in LA: a new day there, 09:00 not yet
        (datetime(2026, 1, 10, 10, 59, tzinfo=UTC), {}),  # 23:59 in Auckland
        (datetime(2026, 1, 10, 11, 0, tzinfo=UTC), {}),  # midnight in Auckland: the 11th, 09:00 not yet
        (datetime(2026, 1, 10, 17, 0, tzinfo=UTC), {"angeleno": "2026-01-10"}),
        (datetime(2026, 1, 10, 20, 0, tzinfo=UTC), {"kiwi": "2026-01-11"}),
        (datetime(2026, 1, 10, 23, 59, tzinfo=UTC), {}),
    ]
    had: dict[str, list[str]] = {"kiwi": [], "angeleno": []}
    for now, new in steps:
        stats = await compose_pass(chat.core.sessions, settings, now)
        for handle, day in new.items():
            had[handle].append(day)
        assert await digest_days(chat.core, "kiwi", "angeleno") == had, now
        assert stats.considered == len(new), now


async def test_across_the_spring_daylight_saving_change_in_berlin(chat: Chat, settings: Settings) -> None:
    await chat.say("night", "/digest 02:30 Europe/Berlin")  # 02:30 does not exist on 29 March 2026
    await chat.say("morning", "/digest 09:00 Europe/Berlin")
    steps = [
        (datetime(2026, 3, 28, 7, 59, tzinfo=UTC), {"morning": []}),
        (datetime(2026, 3, 28, 8, 0, tzinfo=UTC), {"morning": ["2026-03-28"]}),  # 09:00 CET = 08:00 UTC
        (datetime(2026, 3, 29, 0, 59, tzinfo=UTC), {"night": ["2026-03-28"]}),  # 01:59 CET: not yet
        (datetime(2026, 3, 29, 1, 0, tzinfo=UTC), {"night": ["2026-03-28", "2026-03-29"]}),  # 03:00 CEST
        (datetime(2026, 3, 29, 6, 59, tzinfo=UTC), {"morning": ["2026-03-28"]}),
        (datetime(2026, 3, 29, 7, 0, tzinfo=UTC), {"morning": ["2026-03-28", "2026-03-29"]}),  # 09:00 CEST
        (datetime(2026, 3, 29, 23, 0, tzinfo=UTC), {"night": ["2026-03-28", "2026-03-29"]}),
    ]
    await compose_pass(chat.core.sessions, settings, datetime(2026, 3, 28, 1, 30, tzinfo=UTC))  # 02:30 CET
    for now, expected in steps:
        await compose_pass(chat.core.sessions, settings, now)
        days = await digest_days(chat.core, "night", "morning")
        assert {h: days[h] for h in expected} == expected, now


async def test_across_the_autumn_daylight_saving_change_in_berlin(chat: Chat, settings: Settings) -> None:
    await chat.say("night", "/digest 02:30 Europe/Berlin")  # 02:30 happens twice on 25 October 2026
    await chat.say("morning", "/digest 09:00 Europe/Berlin")
    steps = [
        (datetime(2026, 10, 24, 6, 59, tzinfo=UTC), {"morning": []}),
        (datetime(2026, 10, 24, 7, 0, tzinfo=UTC), {"morning": ["2026-10-24"]}),  # 09:00 CEST = 07:00 UTC
        (datetime(2026, 10, 25, 0, 29, tzinfo=UTC), {"night": ["2026-10-24"]}),
        (datetime(2026, 10, 25, 0, 30, tzinfo=UTC), {"night": ["2026-10-24", "2026-10-25"]}),  # 02:30 CEST
        (datetime(2026, 10, 25, 1, 30, tzinfo=UTC), {"night": ["2026-10-24", "2026-10-25"]}),  # 02:30 CET: no more
        (datetime(2026, 10, 25, 7, 0, tzinfo=UTC), {"morning": ["2026-10-24"]}),  # 08:00 CET
        (datetime(2026, 10, 25, 8, 0, tzinfo=UTC), {"morning": ["2026-10-24", "2026-10-25"]}),  # 09:00 CET
    ]
    await compose_pass(chat.core.sessions, settings, datetime(2026, 10, 24, 0, 30, tzinfo=UTC))
    for now, expected in steps:
        await compose_pass(chat.core.sessions, settings, now)
        days = await digest_days(chat.core, "night", "morning")
        assert {h: days[h] for h in expected} == expected, now


async def test_the_default_is_on_at_nine_in_the_default_time_zone(chat: Chat, settings: Settings) -> None:
    await people(chat, "plain")
    berlin = settings.model_copy(update={"default_timezone": "Europe/Berlin"})
    await compose_pass(chat.core.sessions, berlin, datetime(2026, 1, 10, 7, 59, tzinfo=UTC))
    assert await digest_days(chat.core, "plain") == {"plain": []}
    await compose_pass(chat.core.sessions, berlin, datetime(2026, 1, 10, 8, 0, tzinfo=UTC))
    assert await digest_days(chat.core, "plain") == {"plain": ["2026-01-10"]}
    await chat.say("plain", "/digest off")
    await compose_pass(chat.core.sessions, berlin, datetime(2026, 1, 11, 8, 0, tzinfo=UTC))
    assert await digest_days(chat.core, "plain") == {"plain": ["2026-01-10"]}


async def test_two_processes_composing_at_once_write_one_digest_per_person(
    chat: Chat, other_core: Core, settings: Settings
) -> None:
    handles = [f"reader{i}" for i in range(12)]
    await people(chat, "alice", *handles)
    await add_post(chat.core, "alice", NOON - timedelta(hours=1), likes=2)
    for _ in range(3):
        await asyncio.gather(
            compose_pass(chat.core.sessions, settings, NOON),
            compose_pass(other_core.sessions, settings, NOON),
        )
    rows = await deliveries(chat.core, "digest")
    assert sorted(r.key for r in rows) == sorted(
        {digest_key(await person_id(chat.core, h), date(2026, 1, 10)) for h in [*handles, "alice"]}
    )


# --- delivery ------------------------------------------------------------------------------------------------


async def test_a_sent_digest_is_one_collage_with_a_line_and_a_button_per_post(chat: Chat, settings: Settings) -> None:
    await people(chat, "alice", "bob", "reader")
    await chat.say("reader", "/follow alice")
    await chat.say("reader", "/follow bob")
    now = utcnow()
    posts = [
        await add_post(chat.core, "alice", now - timedelta(hours=1), likes=4, prompt="a fox at dawn"),
        await add_post(chat.core, "bob", now - timedelta(hours=2), likes=2, prompt="a boat in fog"),
        await add_post(chat.core, "alice", now - timedelta(hours=3), likes=1, prompt="a quiet lake"),
    ]
    await compose_pass(chat.core.sessions, settings, now, force=True)
    messenger = FakeMessenger()
    await sent_digests(chat.core, messenger)

    [reply] = messenger.to(chat_of("reader"))
    assert reply.image is not None and reply.image.path.exists()
    with Image.open(reply.image.path) as picture:
        assert picture.format == "JPEG" and picture.size == collage_size(3)
    assert reply.text.startswith("☀️ Your daily digest")
    assert f"#{posts[0]} @alice: a fox at dawn" in reply.text
    assert f"#{posts[1]} @bob: a boat in fog" in reply.text
    assert f"#{posts[2]} @alice: a quiet lake" in reply.text
    assert [b.action for row in reply.buttons for b in row] == [f"post {p}" for p in posts]
    rows = {d.person_id: d for d in await deliveries(chat.core, "digest")}
    assert rows[await person_id(chat.core, "reader")].status == "sent"
    # Sending again (another wake, another pass) changes nothing.
    await compose_pass(chat.core.sessions, settings, now, force=True)
    chat.core.outbox.wake()
    async with asyncio.timeout(10):
        await chat.core.drain()
    assert messenger.counts()[chat_of("reader")] == 1


async def test_a_digest_says_which_posts_are_trending_ones_from_strangers(chat: Chat, settings: Settings) -> None:
    await people(chat, "alice", "carol", "reader", "loner")
    await chat.say("reader", "/follow alice")
    now = utcnow()
    followed = await add_post(chat.core, "alice", now - timedelta(hours=2), likes=1, prompt="a fox at dawn")
    stranger = await add_post(chat.core, "carol", now - timedelta(hours=1), likes=50, prompt="a boat in fog")
    await compose_pass(chat.core.sessions, settings, now, force=True)
    messenger = FakeMessenger()
    await sent_digests(chat.core, messenger)

    [mixed] = messenger.to(chat_of("reader"))
    title, *lines = mixed.text.splitlines()
    assert title.endswith(": the best new images from the people you follow, and 🔥 trending ones from others")
    assert lines == [f"#{followed} @alice: a fox at dawn", f"🔥 #{stranger} @carol: a boat in fog"]
    [strangers_only] = messenger.to(chat_of("loner"))  # follows nobody
    assert strangers_only.text.splitlines()[0].endswith(
        ": 🔥 trending new images (nothing new from the people you follow)"
    )
    assert "from the people you follow\n" not in strangers_only.text


async def test_posts_deleted_or_made_private_after_composing_are_left_out(chat: Chat, settings: Settings) -> None:
    await people(chat, "alice", "reader", "fan")
    await chat.say("reader", "/follow alice")
    await chat.say("fan", "/follow alice")
    now = utcnow()
    kept = await add_post(chat.core, "alice", now - timedelta(hours=1), likes=3)
    deleted = await add_post(chat.core, "alice", now - timedelta(hours=2), likes=2)
    hidden = await add_post(chat.core, "alice", now - timedelta(hours=3), likes=1)
    await compose_pass(chat.core.sessions, settings, now, force=True)
    assert await digest_posts(chat.core, "reader") == [kept, deleted, hidden]

    assert "Deleted" in await chat.text("alice", f"/delete {deleted}")
    async with chat.core.sessions() as session:
        await session.execute(update(Post).where(Post.id == hidden).values(visibility="private"))
        await session.commit()
    messenger = FakeMessenger()
    await sent_digests(chat.core, messenger)
    [reply] = messenger.to(chat_of("reader"))
    assert [b.action for row in reply.buttons for b in row] == [f"post {kept}"]
    assert f"#{deleted}" not in reply.text and f"#{hidden}" not in reply.text
    assert reply.image is not None
    with Image.open(reply.image.path) as picture:
        assert picture.size == collage_size(1)


async def test_a_digest_whose_posts_are_all_gone_is_not_sent(chat: Chat, settings: Settings) -> None:
    await people(chat, "alice", "reader")
    await chat.say("reader", "/follow alice")
    gone = await add_post(chat.core, "alice", utcnow() - timedelta(hours=1), likes=3)
    await compose_pass(chat.core.sessions, settings, utcnow(), force=True)
    await chat.say("alice", f"/delete {gone}")
    messenger = FakeMessenger()
    await sent_digests(chat.core, messenger)
    assert messenger.sent == []
    assert {d.status for d in await deliveries(chat.core, "digest")} == {"skipped"}


async def test_a_blocked_recipient_is_skipped_and_the_run_goes_on(chat: Chat, settings: Settings) -> None:
    handles = ["ann", "blocker", "cid", "dee"]
    await people(chat, "alice", *handles)
    for handle in handles:
        await chat.say(handle, "/follow alice")
    await add_post(chat.core, "alice", utcnow() - timedelta(hours=1), likes=3)
    await compose_pass(chat.core.sessions, settings, utcnow(), force=True)
    messenger = FakeMessenger(failures={chat_of("blocker"): [Unreachable("bot was blocked by the user")]})
    await sent_digests(chat.core, messenger)

    assert messenger.counts() == {chat_of(h): 1 for h in ("ann", "cid", "dee")}  # alice: only her own post
    rows = {d.person_id: d for d in await deliveries(chat.core, "digest")}
    blocked = rows[await person_id(chat.core, "blocker")]
    assert blocked.status == "skipped" and "unreachable" in (blocked.error or "")
    assert (await identity(chat.core, "blocker")).unreachable

    # Tomorrow the blocker is not even queued; once they write again, they are.
    tomorrow = utcnow() + timedelta(days=1)
    await add_post(chat.core, "alice", tomorrow - timedelta(hours=1), likes=3)
    stats = await compose_pass(chat.core.sessions, settings, tomorrow, force=True)
    assert stats.unreachable == 1 and stats.queued == 3
    await chat.say("blocker", "/digest")
    assert not (await identity(chat.core, "blocker")).unreachable


async def test_the_digest_goes_where_the_person_was_last_active(chat: Chat, settings: Settings) -> None:
    await people(chat, "alice", "reader")
    await chat.say("reader", "/follow alice")
    reader = await person_id(chat.core, "reader")
    async with chat.core.sessions() as session:
        session.add(
            Identity(
                person_id=reader,
                platform="telegram",
                platform_user_id="42",
                chat_id="tg-42",
                last_seen_at=utcnow() + timedelta(minutes=1),
            )
        )
        await session.commit()
    await add_post(chat.core, "alice", utcnow() - timedelta(hours=1), likes=1)
    await compose_pass(chat.core.sessions, settings, utcnow(), force=True)
    console, telegram = FakeMessenger(), FakeMessenger(platform="telegram")
    chat.core.register_messenger(telegram)
    await sent_digests(chat.core, console)
    assert len(telegram.to("tg-42")) == 1
    assert console.to(chat_of("reader")) == []


# --- the collage ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "columns", "rows"), [(1, 1, 1), (2, 2, 1), (3, 3, 1), (4, 2, 2), (5, 3, 2), (6, 3, 2), (10, 3, 4)]
)
def test_collage_size_follows_the_grid(count: int, columns: int, rows: int) -> None:
    assert collage.grid(count) == (columns, rows)
    step = collage.TILE + collage.GAP
    assert collage_size(count) == (
        collage.GAP + columns * step,
        collage.GAP + rows * (collage.TILE + collage.LABEL + collage.GAP),
    )


def _tile_origin(index: int, columns: int) -> tuple[int, int]:
    return (
        collage.GAP + (index % columns) * (collage.TILE + collage.GAP),
        collage.GAP + (index // columns) * (collage.TILE + collage.LABEL + collage.GAP),
    )


def _label_band(picture: Image.Image, index: int, columns: int) -> Image.Image:
    x, y = _tile_origin(index, columns)
    return picture.crop((x, y + collage.TILE, x + collage.TILE, y + collage.TILE + collage.LABEL)).convert("L")


def _reference_band(label: str) -> Image.Image:
    """The label as plain text on the band's background, to compare the rendered band with."""
    band = Image.new("RGB", (collage.TILE, collage.LABEL), collage.BACKGROUND)
    font = ImageFont.load_default(size=24)
    ImageDraw.Draw(band).text((10, collage.LABEL // 2), label, fill=(235, 235, 240), font=font, anchor="lm")
    return band.convert("L")


def _difference(a: Image.Image, b: Image.Image) -> float:
    return ImageStat.Stat(ImageChops.difference(a, b)).mean[0]


def test_a_collage_shows_each_tile_with_its_label(tmp_path: Path) -> None:
    colours = [(220, 30, 30), (30, 200, 40), (40, 60, 230), (240, 200, 20), (200, 30, 200)]
    labels = ["#12 @bob", "#7 @al", "#12345 @a_much_longer_handle", "#3 @cy", "#99 @dot"]
    tiles = []
    for i, colour in enumerate(colours):
        path = tmp_path / f"tile{i}.png"
        path.write_bytes(solid_png(colour, size=500 + 37 * i))  # any size: they are cropped and scaled
        tiles.append(Tile(path, labels[i]))
    data = collage.render(tiles)
    out = tmp_path / "collage.jpg"
    out.write_bytes(data)
    with Image.open(out) as opened:
        assert opened.format == "JPEG"
        picture = opened.convert("RGB")
    assert picture.size == collage_size(5)
    columns, _ = collage.grid(5)
    for index, colour in enumerate(colours):
        x, y = _tile_origin(index, columns)
        centre = picture.getpixel((x + collage.TILE // 2, y + collage.TILE // 2))
        assert all(abs(a - b) < 12 for a, b in zip(centre, colour, strict=True)), (index, centre)
        band = _label_band(picture, index, columns)
        text_pixels = sum(band.histogram()[161:])
        assert text_pixels > 40, (index, text_pixels)  # some text was drawn
        right = _label_band(picture, index, columns).point(lambda v: 255 if v > 160 else 0).getbbox()
        assert right is not None and right[0] < 20  # starting at the tile's left edge
        # The band reads as its own label, not as another one.
        own = _difference(band, _reference_band(labels[index]))
        other = _difference(band, _reference_band(labels[(index + 1) % len(labels)]))
        assert own < 3 and other > own * 2, (index, own, other)
    # The empty sixth cell of the 3x2 grid stays background.
    x, y = _tile_origin(5, columns)
    empty = picture.crop((x, y, x + collage.TILE, y + collage.TILE + collage.LABEL)).convert("L")
    assert ImageStat.Stat(empty).extrema[0][1] < 40


async def test_the_same_tiles_make_one_collage_file(core: Core, tmp_path: Path) -> None:
    path = tmp_path / "tile.png"
    path.write_bytes(solid_png((10, 120, 200)))
    tiles = [Tile(path, "#1 @ann"), Tile(path, "#2 @bo")]
    first = await collage.collage_file(core.media, tiles)
    stamp = first.stat().st_mtime_ns
    second = await collage.collage_file(core.media, tiles)
    assert first == second and second.stat().st_mtime_ns == stamp
    third = await collage.collage_file(core.media, [Tile(path, "#1 @ann")])
    assert third != first


# --- the galleries' best of the day --------------------------------------------------------------------------


async def test_each_gallery_gets_the_best_of_the_day_once_at_its_time(chat: Chat, settings: Settings) -> None:
    await people(chat, "alice", "bob")
    evening = datetime.combine(date(2026, 1, 10), time(20, 0), tzinfo=ZoneInfo("Europe/Berlin")).astimezone(UTC)
    best = await add_post(chat.core, "alice", evening - timedelta(hours=2), likes=9)
    second = await add_post(chat.core, "bob", evening - timedelta(hours=3), likes=4)
    await add_post(chat.core, "bob", evening - timedelta(hours=1), likes=50, visibility="private")
    await add_post(chat.core, "bob", evening - timedelta(hours=26), likes=50)
    berlin = settings.model_copy(update={"default_timezone": "Europe/Berlin", "gallery_best_of_time": "20:00"})
    galleries = [("console", "gallery-a"), ("telegram", "-100123")]

    assert await gallery.best_of_pass(chat.core.sessions, berlin, galleries, evening - timedelta(minutes=1)) == 0
    for _ in range(3):  # every tick after 20:00 that day: the same rows, nothing more
        await gallery.best_of_pass(chat.core.sessions, berlin, galleries, evening + timedelta(minutes=5))
    rows = await deliveries(chat.core, "bestof")
    assert sorted(r.key for r in rows) == ["bestof:console:gallery-a:2026-01-10", "bestof:telegram:-100123:2026-01-10"]
    assert all(json.loads(r.payload)["posts"] == [best, second] for r in rows)
    assert await gallery.best_of_pass(chat.core.sessions, berlin, [], evening) == 0

    console, telegram = FakeMessenger(), FakeMessenger(platform="telegram")
    chat.core.register_messenger(telegram)
    await sent_digests(chat.core, console)
    [post] = console.to("gallery-a")
    assert len(telegram.to("-100123")) == 1
    assert post.text.startswith("🏆 Best of the day, Saturday 10 January")
    assert [b.action for row in post.buttons for b in row] == [f"post {best}", f"post {second}"]
    assert post.image is not None
    with Image.open(post.image.path) as picture:
        assert picture.size == collage_size(2)

    # The next evening brings the next one.
    await add_post(chat.core, "alice", evening + timedelta(hours=20), likes=1)
    await gallery.best_of_pass(chat.core.sessions, berlin, galleries, evening + timedelta(days=1))
    assert len(await deliveries(chat.core, "bestof")) == 4


# --- /digest ---------------------------------------------------------------------------------------------------


def _expected_next(zone: str, at: time, sent_today: bool = False) -> str:
    now = utcnow()
    upcoming = next_digest(now, ZoneInfo(zone), at, sent_today)
    return "Next: today's, in a few minutes." if upcoming <= now else f"Next: {upcoming:%A %d %B, %H:%M}."


async def test_digest_command_shows_and_changes_the_setting(chat: Chat) -> None:
    status = await chat.text("ann", "/digest")
    assert status.startswith("Your daily digest comes at 09:00 (UTC).")
    assert _expected_next("UTC", time(9, 0)) in status

    assert await chat.text("ann", "/digest OFF") == "Your daily digest is off. Turn it on with /digest on."
    assert await chat.text("ann", "/digest") == "Your daily digest is off. Turn it on with /digest on."
    assert (await chat.text("ann", "/digest on")).startswith("Your daily digest comes at 09:00 (UTC).")

    changed = await chat.text("ann", "/digest 7:15 Europe/Berlin")
    assert changed.startswith("Your daily digest comes at 07:15 (Europe/Berlin).")
    assert _expected_next("Europe/Berlin", time(7, 15)) in changed
    assert (await chat.text("ann", "/digest 18:45")).startswith("Your daily digest comes at 18:45 (Europe/Berlin).")
    await chat.say("ann", "/digest off")
    # Setting a time turns it back on.
    assert (await chat.text("ann", "/digest 06:00")).startswith("Your daily digest comes at 06:00 (Europe/Berlin).")


@pytest.mark.parametrize(
    ("line", "answer"),
    [
        ("/digest 25:00", "Usage: /digest on, /digest off, or /digest 08:30 Europe/Berlin"),
        ("/digest soon", "Usage: /digest on, /digest off, or /digest 08:30 Europe/Berlin"),
        ("/digest 08:00 Europe/Berlin extra", "Usage: /digest on, /digest off, or /digest 08:30 Europe/Berlin"),
        (
            "/digest 08:00 Mars/Olympus",
            "I don't know the time zone 'Mars/Olympus'. Use a name like Europe/Berlin or America/New_York.",
        ),
        # A region alone is a folder of zones, and a very long name no file can have: both are
        # errors of the file system inside zoneinfo, not its "not found".
        (
            "/digest 08:00 America",
            "I don't know the time zone 'America'. Use a name like Europe/Berlin or America/New_York.",
        ),
        (
            "/digest 08:00 " + "z" * 300,
            "I don't know the time zone 'zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz…'. "
            "Use a name like Europe/Berlin or America/New_York.",
        ),
    ],
)
async def test_digest_command_refuses_what_it_cannot_use_and_keeps_the_setting(
    chat: Chat, line: str, answer: str
) -> None:
    await chat.say("ann", "/digest 10:30 Asia/Tokyo")
    assert await chat.text("ann", line) == answer
    assert (await chat.text("ann", "/digest")).startswith("Your daily digest comes at 10:30 (Asia/Tokyo).")


async def test_digest_status_says_tomorrow_once_todays_digest_went_out(chat: Chat, settings: Settings) -> None:
    await chat.say("ann", "/digest 23:59 Asia/Tokyo")
    await compose_pass(chat.core.sessions, settings, utcnow(), force=True)  # as `digest --now` does
    status = await chat.text("ann", "/digest")
    assert _expected_next("Asia/Tokyo", time(23, 59), sent_today=True) in status
    tokyo_today = utcnow().astimezone(ZoneInfo("Asia/Tokyo")).date()
    assert f"{tokyo_today + timedelta(days=1):%A %d %B}, 23:59" in status


async def test_digest_status_says_soon_when_todays_digest_is_due_but_not_yet_sent(chat: Chat) -> None:
    # The time has passed today and there was no digest yet: the next pass sends it, not tomorrow's.
    local = utcnow().astimezone(ZoneInfo("Asia/Tokyo"))
    if local.hour == 0 and local.minute < 2:
        pytest.skip("too close to midnight in Tokyo for 00:00 to be 'passed'")
    status = await chat.text("ann", "/digest 00:00 Asia/Tokyo")
    assert "Next: today's, in a few minutes." in status, status
    # ...and the next pass does send it.
    stats = await compose_pass(chat.core.sessions, chat.core.settings, utcnow())
    assert stats.considered == 1
    assert _expected_next("Asia/Tokyo", time(0, 0), sent_today=True) in await chat.text("ann", "/digest")


# --- the scheduler -----------------------------------------------------------------------------------------


async def test_the_running_bot_sends_digests_notifications_and_best_of_on_its_own(
    core: Core, settings: Settings
) -> None:
    every_tick = {"scheduler_tick_seconds": 0.2, "quiet_hours": "", "gallery_best_of_time": "00:00"}
    app = await bootstrap(settings.model_copy(update=every_tick))
    platform = FakeMessenger()
    app.register_messenger(platform)
    app.register_gallery("console", "gallery")
    try:
        chat = Chat(app)
        await people(chat, "alice", "reader")
        await chat.say("reader", "/digest 00:00")  # midnight UTC has always passed: due now
        await chat.say("reader", "/follow alice")
        post = await add_post(app, "alice", utcnow() - timedelta(hours=1), likes=1)
        await set_person(app, "alice", digest_enabled=False)
        await app.start(schedule=True)
        async with asyncio.timeout(10):
            while len(platform.sent) < 3:  # noqa: ASYNC110 (the fake platform has no event to wait on)
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.6)  # a few more ticks change nothing
        texts = {s.chat_id: s.reply.text for s in platform.sent}
        assert platform.counts() == {chat_of("reader"): 1, chat_of("alice"): 1, "gallery": 1}
        assert texts[chat_of("reader")].startswith("☀️ Your daily digest")
        assert texts[chat_of("alice")] == "🔔 @reader followed you"
        assert texts["gallery"].startswith("🏆 Best of the day") and f"#{post}" in texts["gallery"]
    finally:
        await app.aclose()
