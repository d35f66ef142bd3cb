"""Lineage: cards credit the parent, /lineage walks back to the original past a deleted post, lists
the most liked remixes with buttons, and the original's author hears of a remix of a remix."""

from __future__ import annotations

from datetime import UTC, datetime

from core.feed.notifications import batch_pass
from tests.fakes.platform import FakeMessenger, chat_of
from tests.support import Chat

T0 = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)


async def remix(chat: Chat, who: str, parent: int, prompt: str) -> int:
    job = await chat.finish(await chat.say(who, f"/remix {parent} {prompt}"))
    assert job.status == "done" and job.post_id is not None, job.error
    return job.post_id


async def test_three_generations_with_the_middle_one_deleted(chat: Chat) -> None:
    original = await chat.post("alice", "a red fox in the snow")
    middle = await remix(chat, "bob", original, "the fox at night")
    youngest = await remix(chat, "carol", middle, "the fox at night, in blue")
    [card] = await chat.say("dave", f"/post {youngest}")
    assert f"🔁 Remix of #{middle} by @bob" in card.text
    [shown] = await chat.say("dave", f"/lineage {youngest}")
    assert shown.text.splitlines()[:3] == [
        f"🌳 Lineage of #{youngest} by @carol",
        "Remix of:",
        f"  ↑ #{middle} by @bob: the fox at night (❤️ 0)",
    ]
    assert f"  ↑ #{original} by @alice: a red fox in the snow (❤️ 0)" in shown.text
    assert [b.action for row in shown.buttons for b in row] == [f"post {middle}", f"post {original}"]

    assert await chat.text("bob", f"/delete {middle}") == f"Deleted #{middle}."
    [shown] = await chat.say("dave", f"/lineage {youngest}")
    assert shown.text.splitlines()[1:4] == [
        "Remix of:",
        "  ↑ … a deleted post",
        f"  ↑ #{original} by @alice: a red fox in the snow (❤️ 0)",
    ]
    assert [b.action for row in shown.buttons for b in row] == [f"post {original}"]
    [card] = await chat.say("dave", f"/post {youngest}")
    assert "🔁 Remix of a deleted post" in card.text


async def test_the_most_liked_remixes_come_first_with_buttons(chat: Chat) -> None:
    original = await chat.post("alice", "a lighthouse")
    plain = await remix(chat, "bob", original, "a lighthouse, plain")
    loved = await remix(chat, "carol", original, "a lighthouse, loved")
    await chat.say("dave", f"/like {loved}")
    [shown] = await chat.say("dave", f"/lineage {original}")
    lines = shown.text.splitlines()
    assert lines[1] == "An original: it remixes nothing."
    assert lines[2:] == [
        "Most liked remixes:",
        f"  ↓ #{loved} by @carol: a lighthouse, loved (❤️ 1)",
        f"  ↓ #{plain} by @bob: a lighthouse, plain (❤️ 0)",
    ]
    assert [b.action for row in shown.buttons for b in row] == [f"post {loved}", f"post {plain}"]


async def test_the_originals_author_is_told_of_a_remix_of_a_remix_once_batched(chat: Chat) -> None:
    original = await chat.post("alice", "a red fox")
    middle = await remix(chat, "bob", original, "a red fox, older")
    await remix(chat, "carol", middle, "a red fox, oldest")
    await remix(chat, "dave", middle, "a red fox, ancient")
    messenger = FakeMessenger()
    chat.core.register_messenger(messenger)
    await batch_pass(chat.core.sessions, chat.core.settings, T0)
    chat.core.outbox.wake()
    await chat.core.drain()
    told_alice = [m.text for m in messenger.to(chat_of("alice")) if m.text.startswith("🔔")]
    # Newest news first, as every summary is.
    assert told_alice == [f"🔔 @dave and @carol remixed a remix of #{original}\n🔔 @bob remixed #{original}"]
    told_bob = [m.text for m in messenger.to(chat_of("bob")) if m.text.startswith("🔔")]
    assert told_bob == [f"🔔 @dave and @carol remixed #{middle}"]


async def test_remixes_of_remixes_are_ranked_by_likes_without_what_the_viewer_may_not_see(chat: Chat) -> None:
    original = await chat.post("alice", "a lighthouse")
    child = await remix(chat, "bob", original, "a lighthouse at dusk")
    grandchild = await remix(chat, "carol", child, "a lighthouse at dusk, in oils")
    great = await remix(chat, "erin", grandchild, "a lighthouse at dusk, in oils, cracked")
    hidden = await remix(chat, "frank", grandchild, "a lighthouse, just for me --private")
    blocked = await remix(chat, "gina", child, "a lighthouse, by someone dave blocked")
    for who in ("dave", "bob", "carol"):
        await chat.say(who, f"/like {great}")
    await chat.say("dave", f"/like {grandchild}")
    await chat.say("bob", f"/like {blocked}")
    await chat.say("dave", "/block @gina")
    [shown] = await chat.say("dave", f"/lineage {original}")
    assert shown.text.splitlines()[2:] == [
        "Most liked remixes:",
        f"  ↓ #{great} by @erin: a lighthouse at dusk, in oils, cracked (❤️ 3, remixing #{grandchild})",
        f"  ↓ #{grandchild} by @carol: a lighthouse at dusk, in oils (❤️ 1, remixing #{child})",
        f"  ↓ #{child} by @bob: a lighthouse at dusk (❤️ 0)",
    ]
    assert [b.action for row in shown.buttons for b in row] == [f"post {great}", f"post {grandchild}", f"post {child}"]
    # Its author sees the private one; someone not blocked sees gina's.
    [own] = await chat.say("frank", f"/lineage {original}")
    assert f"#{hidden} by @frank" in own.text
    [other] = await chat.say("carol", f"/lineage {child}")
    assert f"#{blocked} by @gina" in other.text and f"#{great} by @erin" in other.text
