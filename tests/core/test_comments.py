"""Comments: writing, pages of them, who may delete one, the post author's batched notification,
limits and moderation; through the console commands, buttons, and the real Telegram bot."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from sqlalchemy import func, select

from core.app import Core
from core.comments import COMMENT_MAX_CHARS, PAGE_SIZE
from core.feed.notifications import batch_pass
from core.gen.moderation import compile_blocklist
from core.models import Post
from tests.fakes.platform import FakeMessenger, chat_of
from tests.fakes.telegram_api import FakeTelegramAPI, RunningBot, User
from tests.support import Chat, actor

T0 = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)  # outside the default quiet hours


async def test_a_comment_shows_under_the_post_and_its_count_on_the_card(chat: Chat) -> None:
    post = await chat.post("alice", "a quiet harbour")
    said = await chat.text("bob", f"/comment #{post} lovely   light!")
    assert said.startswith("💬 Your comment c") and f"on #{post}" in said
    card, latest = await chat.say("carol", f"/post {post}")
    assert ("💬 1", f"comment {post}") in [(b.label, b.action) for row in card.buttons for b in row]
    assert latest.text.splitlines()[1].endswith("@bob: lovely light!")


async def test_the_comment_button_asks_and_the_answer_is_the_comment(chat: Chat) -> None:
    post = await chat.post("alice")
    [asked] = await chat.press("bob", f"comment {post}")
    assert asked.ask is not None and asked.ask.command == "comment"
    await chat.core.answer(actor("bob"), asked.ask, "so soft")
    assert "@bob: so soft" in await chat.text("alice", f"/comments {post}")


async def test_comments_page_newest_first_with_an_older_button_until_the_first(chat: Chat) -> None:
    post = await chat.post("alice")
    people = [f"fan{i}" for i in range(PAGE_SIZE + 3)]
    for i, who in enumerate(people):
        await chat.say(who, f"/comment {post} number {i}")
    [first] = await chat.say("alice", f"/comments {post}")
    shown = first.text.splitlines()[1:]
    assert [line.split(": ")[1] for line in shown] == [f"number {i}" for i in range(len(people) - 1, 2, -1)]
    [[older]] = first.buttons
    [second] = await chat.press("alice", older.action)
    assert [line.split(": ")[1] for line in second.text.splitlines()[1:]] == ["number 2", "number 1", "number 0"]
    assert second.buttons == ()
    latest = (await chat.say("bob", f"/post {post}"))[1]
    assert len(latest.text.splitlines()) == 4 and latest.buttons[0][0].action.startswith(f"comments {post} ")


async def test_the_comment_author_the_post_author_and_admins_may_delete_others_may_not(chat: Chat) -> None:
    post = await chat.post("alice")
    ids = []
    for who in ("bob", "carol", "dave"):
        said = await chat.text(who, f"/comment {post} hello from {who}")
        ids.append(said.split()[3])  # "c12"
    assert await chat.text("eve", f"/uncomment {ids[0]}") == f"Comment {ids[0]} is not yours to delete."
    assert (await chat.text("bob", f"/uncomment {ids[0]}")).startswith(f"Deleted comment {ids[0]}")
    assert (await chat.text("alice", f"/uncomment {ids[1]}")).startswith(f"Deleted comment {ids[1]}")
    assert (await chat.text("admin", f"/uncomment {ids[2]}")).startswith(f"Deleted comment {ids[2]}")
    assert await chat.text("bob", f"/uncomment {ids[0]}") == f"There is no comment {ids[0]}."
    assert await chat.text("bob", f"/comments {post}") == f"No comments on #{post}. Write one: /comment {post} <text>"


async def test_no_comments_on_a_post_the_person_cannot_see(chat: Chat) -> None:
    post = await chat.post("alice", "a secret garden --private")
    assert await chat.text("bob", f"/comment {post} hi") == f"There is no post #{post}."
    assert await chat.text("bob", f"/comments {post}") == f"There is no post #{post}."


async def test_length_rate_and_blocklist_limits(chat: Chat, core: Core) -> None:
    post = await chat.post("alice")
    too_long = "x" * (COMMENT_MAX_CHARS + 1)
    assert "the limit is" in await chat.text("bob", f"/comment {post} {too_long}")
    core.settings = core.settings.model_copy(update={"comments_per_minute": 2})  # COMMENTS_PER_MINUTE
    for i in range(2):
        await chat.say("bob", f"/comment {post} {i}")
    assert await chat.text("bob", f"/comment {post} one more") == "You are commenting very fast; please wait a minute."
    core.settings = core.settings.model_copy(update={"comments_per_minute": 0})  # the general limit only
    assert (await chat.text("bob", f"/comment {post} one more")).startswith("💬 Your comment")
    core.moderator.blocklist = compile_blocklist(["gore"])
    assert await chat.text("carol", f"/comment {post} such GORE") == (
        "Your comment contains “GORE”, which is not allowed here."
    )


async def test_the_post_author_is_told_of_comments_in_one_batched_message(chat: Chat) -> None:
    post = await chat.post("alice")
    await chat.say("bob", f"/comment {post} wow")
    await chat.say("carol", f"/comment {post} nice")
    await chat.say("alice", f"/comment {post} thanks")  # not news to herself
    messenger = FakeMessenger()
    chat.core.register_messenger(messenger)
    assert await batch_pass(chat.core.sessions, chat.core.settings, T0) == 1
    chat.core.outbox.wake()
    await chat.core.drain()
    told = [m.text for m in messenger.to(chat_of("alice")) if m.text.startswith("🔔")]
    assert told == [f"🔔 @carol and @bob commented on #{post}"]


ALICE = User(111, "Alice", "alice")
BOB = User(222, "Bob", "bob")


async def test_telegram_the_button_prompts_and_a_plain_reply_to_a_card_comments(
    bot: RunningBot, api: FakeTelegramAPI
) -> None:
    mark = len(api.calls)
    api.say(ALICE, "/imagine a castle on a hill")
    photo = await api.wait_for("sendPhoto", lambda c: c.chat_id == str(ALICE.id), after=mark)
    post_id = photo.result["caption"].split()[0].lstrip("#")
    mark = len(api.calls)
    api.say(BOB, f"/post {post_id}")
    card = await api.wait_for("sendPhoto", lambda c: c.chat_id == str(BOB.id), after=mark)
    mark = len(api.calls)
    api.press(BOB, card.result, f"comment {post_id}")
    question = await api.wait_for("sendMessage", lambda c: c.chat_id == str(BOB.id), after=mark)
    assert question.params["reply_markup"]["force_reply"] is True
    mark = len(api.calls)
    api.say(BOB, "what a view", reply_to=question.result)
    done = await api.wait_for("sendMessage", lambda c: c.chat_id == str(BOB.id), after=mark)
    assert f"is on #{post_id}" in done.params["text"]
    mark = len(api.calls)
    api.say(BOB, "and the clouds!", reply_to=card.result)  # a plain reply to the card itself
    done = await api.wait_for("sendMessage", lambda c: c.chat_id == str(BOB.id), after=mark)
    assert f"is on #{post_id}" in done.params["text"]
    mark = len(api.calls)
    api.say(ALICE, f"/comments {post_id}")
    listed = await api.wait_for("sendMessage", lambda c: c.chat_id == str(ALICE.id), after=mark)
    assert all("@bob: " in line for line in listed.params["text"].splitlines()[1:])
    assert "and the clouds!" in listed.params["text"] and "what a view" in listed.params["text"]


async def test_console_the_comment_button_and_the_next_line(core: Core) -> None:
    import io

    from bots.console.chat import ConsoleChat

    out = io.StringIO()
    console = ConsoleChat(core, out=out, name="alice")
    await console.line("/imagine a lonely tree --seed 1")
    async with asyncio.timeout(30):
        await core.drain()
    async with core.sessions() as session:
        post = await session.scalar(select(func.max(Post.id)))
    await console.line("/as bob")
    await console.line(f"/post {post}")
    await console.line(f"comment {post}")  # the button, as the console shows it
    await console.line("such a calm tree")
    await console.line(f"/comments {post}")
    shown = out.getvalue()
    assert f"[💬 0] comment {post}" in shown and f"Your comment on #{post}?" in shown
    assert "@bob: such a calm tree" in shown.splitlines()[-1]


async def test_a_merged_persons_comments_move_to_the_surviving_account(chat: Chat) -> None:
    from tests.core.test_linking import link

    post = await chat.post("alice")
    await chat.say("tom", "/start", "telegram")  # the older account: it survives
    said = "\n".join(r.text for r in await chat.say("dora", f"/comment {post} from discord", "discord"))
    comment_id = said.split()[3]
    assert "Linked" in await link(chat, ("tom", "telegram"), ("dora", "discord"))
    assert f"{comment_id} @tom: from discord" in await chat.text("alice", f"/comments {post}")
    deleted = "\n".join(r.text for r in await chat.say("tom", f"/uncomment {comment_id}", "telegram"))
    assert deleted.startswith(f"Deleted comment {comment_id}")
