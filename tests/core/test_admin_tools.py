"""/stats, /audit and /admin add: for admins only, typed or pressed; promoted admins act as admins
but cannot promote."""

from __future__ import annotations

import pytest

from tests.support import Chat

ADMINS_ONLY = "Only admins can do that."
EVERY_ADMIN_COMMAND = (
    "reports",
    "hide 1",
    "restore 1",
    "keep 1",
    "remove 1",
    "ban alice 1d",
    "unban alice",
    "stats",
    "audit",
    "admin add bob",
)


@pytest.mark.parametrize("line", EVERY_ADMIN_COMMAND)
async def test_every_admin_command_is_refused_to_others_typed_and_pressed(chat: Chat, line: str) -> None:
    await chat.post("alice")
    await chat.say("bob", "/start")
    assert await chat.text("bob", f"/{line}") == ADMINS_ONLY
    [pressed] = await chat.press("bob", line)
    assert pressed.text == ADMINS_ONLY and pressed.error and pressed.notice
    assert "Nothing in the audit trail" in await chat.text("admin", "/audit")


async def test_stats_counts_people_posts_generations_queue_and_reports(chat: Chat) -> None:
    post_id = await chat.post("alice")
    await chat.say("bob", f"/report {post_id} spam")
    text = await chat.text("admin", "/stats")
    assert "People: 3 (3 active today, 3 this week)" in text
    assert "Posts today: 1" in text
    assert "Generations today: 1, 0 failed" in text
    assert "Generation queue: 0 queued, 0 running" in text
    assert "Open reports: 1" in text


async def test_stats_shows_the_processes_their_leads_and_the_outbox_backlog_as_status_does(chat: Chat) -> None:
    import re

    from core import health, outbox

    await chat.say("admin", "/start")
    async with chat.core.sessions() as session:
        for n in range(2):
            await outbox.add(session, key=f"d{n}", platform="discord", chat_id="1", kind="text", payload={"text": "x"})
        await session.commit()
    front = health.Heartbeat(chat.core.sessions, "messengers", lambda: [])
    back = health.Heartbeat(chat.core.sessions, "scheduler,senders", lambda: ["scheduler", "outbox:discord"])
    await front.start()
    await back.start()
    try:
        text = await chat.text("admin", "/stats")
        status = health.render(await health.health(chat.core.sessions))  # what `python -m bots status` prints
    finally:
        await front.stop()
        await back.stop()
    assert "Processes (2 alive):" in text
    assert f"{front.id} [messengers] v{health.VERSION}, alive, started " in text
    assert f"{back.id} [scheduler,senders]" in text and "leads scheduler, outbox:discord" in text
    assert f"Scheduler leader: {back.id}" in text and f"Outbox senders: discord: {back.id}" in text
    assert "Outbox backlog: discord: 2" in text
    seconds = re.compile(r"\d+ s ago")  # the two were read a moment apart
    assert seconds.sub("…", text).endswith(seconds.sub("…", status))


async def test_audit_lists_actions_and_refusals_newest_first_and_by_person(chat: Chat) -> None:
    post_id = await chat.post("alice")
    await chat.say("bob", "/start")
    await chat.say("admin", f"/hide {post_id} off topic")
    await chat.say("admin", "/ban bob 1d spam")
    chat.core.settings.blocklist = ("forbidden",)
    chat.core.moderator = type(chat.core.moderator)(chat.core.settings)
    assert "banned" not in await chat.text("alice", "/imagine a forbidden fox")
    lines = (await chat.text("admin", "/audit")).splitlines()
    assert "refused prompt @alice" in lines[1]
    assert "@admin ban @bob" in lines[2] and "spam" in lines[2]
    assert f"@admin hide @alice #{post_id} — off topic" in lines[3]
    only_bob = await chat.text("admin", "/audit bob")
    assert "ban @bob" in only_bob and "hide" not in only_bob


async def test_a_promoted_admin_acts_as_one_but_cannot_promote(chat: Chat) -> None:
    post_id = await chat.post("alice")
    await chat.say("helper", "/start")
    assert await chat.text("helper", f"/hide {post_id}") == ADMINS_ONLY
    assert "@helper is now an admin" in await chat.text("admin", "/admin add helper")
    assert "is hidden" in await chat.text("helper", f"/hide {post_id}")
    assert "Only the admins named in ADMINS" in await chat.text("helper", "/admin add alice")
    assert "no longer an admin" in await chat.text("admin", "/admin remove @helper")
    assert await chat.text("helper", f"/restore {post_id}") == ADMINS_ONLY
