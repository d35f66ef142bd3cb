"""/ban and /unban: every action refused with why and until when, told once, posts held back,
queued generations cancelled, the ban lifted after its duration; admins only."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

from sqlalchemy import select

from core import bans
from core.app import Core
from core.merging import merge_people
from core.models import GenerationJob, Person, utcnow
from tests.fakes.platform import deliveries, person_id, set_person
from tests.safety_support import audit_actions, in_feed, in_top, post_row
from tests.support import Chat


async def queued_job(core: Core, handle: str) -> int:
    """A generation waiting in line (not due for an hour, so no worker takes it meanwhile)."""
    async with core.sessions() as session:
        job = GenerationJob(
            idempotency_key=uuid.uuid4().hex,
            person_id=await person_id(core, handle),
            prompt="later",
            seed=1,
            not_before=utcnow() + timedelta(hours=1),
        )
        session.add(job)
        await session.commit()
        return job.id


async def test_a_ban_refuses_every_action_tells_once_hides_posts_and_cancels_queued_jobs(chat: Chat) -> None:
    core = chat.core
    await chat.say("reader", "/start")
    await chat.say("reader", "/follow spammer")  # nobody yet: refused, harmless
    own = await chat.post("spammer", "spam spam")
    other = await chat.post("reader", "a fine fox")
    await chat.say("reader", "/follow spammer")
    job = await queued_job(core, "spammer")

    answer = await chat.text("admin", "/ban @spammer 7d flooding the gallery")
    assert "@spammer is banned until" in answer

    refused = "Your account is banned until"
    for line in (
        "/imagine a fox",
        f"/remix {other} mine",
        f"/like {other}",
        f"/comment {other} spam",
        "/follow reader",
    ):
        [reply] = await chat.say("spammer", line)
        assert reply.text.startswith(refused) and "flooding the gallery" in reply.text and reply.error, line
    [pressed] = await chat.press("spammer", f"vary {other}")
    assert pressed.text.startswith(refused)
    assert "You liked" not in await chat.text("spammer", f"/like {other}")
    # Reading is still allowed.
    assert "a fine fox" in await chat.text("spammer", f"/post {other}")

    told = [json.loads(d.payload)["text"] for d in await deliveries(core, "text")]
    assert len(told) == 1 and told[0].startswith(refused) and "flooding the gallery" in told[0]
    assert own not in await in_feed(chat, "reader") and own not in await in_top(chat, "reader")
    assert "There is no post" in await chat.text("reader", f"/post {own}")
    async with core.sessions() as session:
        cancelled = await session.get(GenerationJob, job)
        assert cancelled is not None and cancelled.status == "failed" and cancelled.error == bans.CANCELLED

    assert "no longer banned" in await chat.text("admin", "/unban spammer")
    assert own in await in_feed(chat, "reader")
    assert "You liked" in await chat.text("spammer", f"/like {other}")
    assert [a for a, _ in await audit_actions(core)] == ["ban", "unban"]


async def test_a_ban_ends_by_itself_after_its_duration(chat: Chat) -> None:
    core = chat.core
    own = await chat.post("spammer")
    other = await chat.post("reader")
    await chat.say("admin", "/ban spammer 1h")
    assert "banned until" in await chat.text("spammer", f"/like {other}")
    await set_person(core, "spammer", banned_until=utcnow() - timedelta(seconds=1))
    assert "You liked" in await chat.text("spammer", f"/like {other}")  # lifted at their next command
    row = await post_row(core, own)
    assert row is not None and row.status == "visible"

    await chat.say("admin", "/ban spammer 1h")
    await set_person(core, "spammer", banned_until=utcnow() - timedelta(seconds=1))
    assert await bans.lift_expired(core.sessions, utcnow(), core.galleries) == 1  # the scheduler's pass
    async with core.sessions() as session:
        person = await session.scalar(select(Person).where(Person.handle == "spammer"))
        assert person is not None and person.banned_until is None
    assert own in await in_top(chat, "reader")
    assert [a for a, _ in await audit_actions(core)] == ["ban", "ban ended", "ban", "ban ended"]


async def test_a_ban_without_duration_is_for_good_and_the_reason_keeps_its_first_word(chat: Chat) -> None:
    await chat.say("troll", "/start")
    assert "banned for good" in await chat.text("admin", "/ban troll harassment of others")
    assert await chat.text("troll", "/imagine x") == "Your account is banned for good: harassment of others."


async def test_a_mistyped_duration_is_refused_not_read_as_a_ban_for_good(chat: Chat) -> None:
    # `5x`, `0m` or `99999w` is an admin's slip for a duration: read as the first word of the
    # reason, it banned the person for good.
    await chat.say("troll", "/start")
    for word in ("5x", "0m", "99999w", "12"):
        answer = await chat.text("admin", f"/ban troll {word} spam")
        assert answer == f"{word} is not a duration. Use minutes, hours, days or weeks: 30m, 12h, 7d, 2w.", answer
    async with chat.core.sessions() as session:
        troll = await session.scalar(select(Person).where(Person.handle == "troll"))
        assert troll is not None and troll.banned_until is None
    assert await audit_actions(chat.core) == []
    assert "banned until" in await chat.text("admin", "/ban troll 2W spam")


async def test_ban_and_unban_are_refused_to_non_admins_typed_or_pressed(chat: Chat) -> None:
    await chat.say("victim", "/start")
    for line in ("/ban victim 7d", "/unban victim"):
        assert await chat.text("bob", line) == "Only admins can do that."
        [pressed] = await chat.press("bob", line.removeprefix("/"))
        assert pressed.text == "Only admins can do that."
    async with chat.core.sessions() as session:
        victim = await session.scalar(select(Person).where(Person.handle == "victim"))
        assert victim is not None and victim.banned_until is None


async def test_merging_a_banned_account_into_another_keeps_the_ban_and_holds_back_all_posts(chat: Chat) -> None:
    core = chat.core
    clean = await chat.post("older", "an older account's post")
    await chat.say("newer", "/start")
    await chat.say("admin", "/ban newer 7d evasion")
    async with core.sessions() as session:
        survivor = await session.scalar(select(Person).where(Person.handle == "older"))
        absorbed = await session.scalar(select(Person).where(Person.handle == "newer"))
        assert survivor is not None and absorbed is not None
        await merge_people(session, survivor, absorbed)
        await session.commit()
    assert "banned until" in await chat.text("older", "/imagine a way around it")
    row = await post_row(core, clean)
    assert row is not None and row.status == "banned"
