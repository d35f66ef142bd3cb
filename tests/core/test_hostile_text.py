"""Hostile text is made harmless where it enters the core, one rule for every command, on SQLite and
PostgreSQL alike: NUL and control characters, terminal escapes, invisible and direction-changing
characters, bytes that were not UTF-8, and names dressed up as someone's handle."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from bench.commands import presses_apart  # the benchmark's: presses a moment apart, past a double tap
from bots.console.chat import ConsoleChat
from core.actor import Actor
from core.app import OOPS, Core
from core.models import Person, Post
from tests.fakes.telegram_api import FakeTelegramAPI, RunningBot, User
from tests.support import Chat, actor
from tests.telegram.test_telegram_bot import imagine, reply_to

HOSTILE = [
    "a fox\x00 in the snow",  # NUL: PostgreSQL refuses it in text
    "a fox \x1b[31min red\x1b[0m",  # a terminal escape sequence
    "a fox\u200b in the\ufeff snow",  # zero-width characters
    "a fox in caf\udce9",  # what a console reads from bytes that were not UTF-8
    "a fox\x07\x7f\x9b in the snow",  # bell, DEL, a C1 control
]


async def person(core: Core, handle: str) -> Person:
    async with core.sessions() as session:
        found = await session.scalar(select(Person).where(Person.handle == handle))
        assert found is not None
        return found


def assert_harmless(text: str) -> None:
    bad = [c for c in text if c in "\x00\x1b\x07\x7f\x9b\u200b\ufeff\u202e" or "\ud800" <= c <= "\udfff"]
    assert not bad, (text, bad)


@pytest.mark.parametrize("prompt", HOSTILE)
async def test_a_hostile_prompt_is_posted_cleaned_not_a_crash(chat: Chat, prompt: str) -> None:
    replies = await chat.say("alice", f"/imagine {prompt}")
    assert OOPS not in [r.text for r in replies]
    job = await chat.finish(replies)
    assert job.status == "done", job.error
    async with chat.core.sessions() as session:
        post = await session.get(Post, job.post_id)
        assert post is not None
    assert_harmless(post.prompt)
    assert post.prompt.startswith("a fox")
    assert_harmless(await chat.text("alice", f"/post {post.id}"))


async def test_the_escape_and_nul_free_prompt_keeps_what_was_meant(chat: Chat) -> None:
    job = await chat.finish(await chat.say("alice", "/imagine caf\u0065\u0301 \x00au lait 👩\u200d🎨"))
    async with chat.core.sessions() as session:
        post = await session.get(Post, job.post_id)
    assert post is not None and post.prompt == "caf\u00e9 au lait 👩\u200d🎨"  # NFC; the emoji joiner stays


@pytest.mark.parametrize("raw", HOSTILE)
async def test_hostile_names_and_bios_are_stored_cleaned(chat: Chat, raw: str) -> None:
    for line in (f"/name {raw}", f"/bio {raw}"):
        assert OOPS not in await chat.text("alice", line)
    alice = await person(chat.core, "alice")
    assert_harmless(alice.display_name)
    assert_harmless(alice.bio)
    assert alice.display_name.startswith("a fox") and alice.bio.startswith("a fox")
    assert_harmless(await chat.text("alice", "/profile"))


async def test_a_bio_keeps_its_line_breaks(chat: Chat) -> None:
    await chat.say("alice", "/bio I paint foxes.\r\nAnd the snow.")
    assert (await person(chat.core, "alice")).bio == "I paint foxes.\nAnd the snow."


@pytest.mark.parametrize("name", ["Eve\u202eeoB", "\u2067Eve", "Eve\u200f"])
async def test_a_name_that_changes_the_writing_direction_is_refused(chat: Chat, name: str) -> None:
    answer = await chat.text("eve", f"/name {name}")
    assert answer == "Names cannot contain characters that change the writing direction."
    assert (await person(chat.core, "eve")).display_name == "Eve"


@pytest.mark.parametrize("name", ["Eve (@boss)", "Eve @boss", "Eve (＠boss)", "Eve @ boss"])
async def test_a_name_cannot_carry_someone_elses_handle(chat: Chat, name: str) -> None:
    answer = await chat.text("eve", f"/name {name}")
    assert answer == "Names cannot contain an @handle; your handle is shown next to your name."


async def test_invisible_characters_in_a_name_are_dropped(chat: Chat) -> None:
    await chat.say("eve", "/name Bo\u200bss\u2060")
    assert (await person(chat.core, "eve")).display_name == "Boss"


@pytest.mark.parametrize("invisible", ["\u034f", "\u3164", "\u115f", "\u1160", "\uffa0", "\u17b4", "\u180e"])
async def test_blank_letters_that_render_as_nothing_are_dropped_from_names(chat: Chat, invisible: str) -> None:
    # Not format characters, yet they draw nothing: "Bo\u3164ss" would look like "Boss", and a name
    # of only such letters would look empty.
    await chat.say("eve", f"/name Bo{invisible}ss")
    assert (await person(chat.core, "eve")).display_name == "Boss"


async def test_a_platform_name_is_cleaned_when_the_profile_is_made(chat: Chat) -> None:
    hostile = Actor("telegram", "901", chat_id="901", display_name="\u202eEve\x00 \x1b[2J(@boss)\u200b")
    [welcome] = await chat.core.handle(hostile, "/start")
    assert welcome.text.startswith("Welcome, @eve_2j_boss!")
    async with chat.core.sessions() as session:
        made = await session.scalar(select(Person).order_by(Person.id.desc()).limit(1))
    assert made is not None
    assert_harmless(made.display_name)
    assert made.display_name == "Eve [2J(boss)"  # what is left of the escape is plain text


async def test_a_button_action_split_by_a_tab_is_understood(chat: Chat) -> None:
    post_id = await chat.post("alice")
    [notice, _card] = await chat.press("bob", f"like\t{post_id}")
    assert notice.text == f"❤️ You liked #{post_id} (1 ❤️)"


async def test_a_button_action_typed_in_the_console_with_a_tab_presses_the_button(chat: Chat) -> None:
    presses_apart(chat.core)
    post_id = await chat.post("alice")
    out = io.StringIO()
    console = ConsoleChat(chat.core, out, name="bob")
    await console.line(f"/post {post_id}")  # shows the card, so its buttons can be typed
    await console.line(f"like\t{post_id}")
    await console.line(f"like  {post_id}")
    assert f"You liked #{post_id} (1 ❤️)" in out.getvalue()
    assert f"You took back your like on #{post_id}" in out.getvalue()


async def test_a_command_split_by_a_tab_is_understood(chat: Chat) -> None:
    await chat.say("alice", "/start")
    assert "You now follow @alice" in await chat.text("bob", "/follow\talice")
    assert "Alice (@alice)" in await chat.text("bob", "/profile\n@alice")


async def test_the_console_reads_bytes_that_are_not_utf8_safely(core: Core) -> None:
    out = io.StringIO()
    console = ConsoleChat(core, out, name="alice")
    # A Latin-1 terminal's é and è, in a line that is otherwise UTF-8 (the ✓).
    stream = io.TextIOWrapper(io.BytesIO("/bio ✓ ".encode() + b"caf\xe9 cr\xe8me\n/profile\n"), encoding="utf-8")
    await console.run(stream)
    assert OOPS not in out.getvalue()
    assert "✓ café crème" in out.getvalue()


async def test_hostile_text_from_telegram_is_cleaned_on_the_way_in(bot: RunningBot, api: FakeTelegramAPI) -> None:
    eve = User(501, "Eve\u202e (@boss)\x1b[2J")
    profile = await reply_to(api, eve, "/profile")
    assert profile.params["text"].startswith("Eve (boss)[2J (@eve_boss_2j)")
    photo = await imagine(api, eve, "a fox\x00 in the\u200b snow")
    assert "a fox in the snow" in photo.params["caption"]


async def test_a_database_error_never_carries_what_a_person_wrote(core: Core) -> None:
    """What reaches the log when a statement fails: the statement, not the prompt or the name in it."""
    statement = text("INSERT INTO people (handle, display_name, bio) VALUES (NULL, :name, '')")  # not null
    async with core.engine.connect() as conn:
        with pytest.raises(IntegrityError) as caught:
            await conn.execute(statement, {"name": "my secret prompt"})
    assert "my secret prompt" not in str(caught.value)


@pytest.mark.parametrize("typed", ["/follow {}", "/profile @{}", "/post 1{}", "/{}", "/lineage {}", "/notify {}"])
async def test_an_error_does_not_send_back_a_huge_argument_whole(chat: Chat, typed: str) -> None:
    [answer] = await chat.core.handle(actor("alice"), typed.format("z" * 100_000))
    assert answer.error and len(answer.text) < 400, answer.text[:200]
    assert "zzzz…" in answer.text or "z" not in answer.text  # cut where it is echoed
