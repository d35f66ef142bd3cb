"""One network: /link joins a person's accounts on two platforms into one profile, /unlink splits them."""

from __future__ import annotations

import asyncio
import re
import sys
from datetime import timedelta
from pathlib import Path

from sqlalchemy import ForeignKey, func, select, text, update

from core import linking
from core.actor import Actor
from core.db import create_engine, create_sessionmaker
from core.feed.digest import compose_pass, digest_key
from core.feed.targets import Target, reachable_targets
from core.linking import ALPHABET, CODE_LENGTH, GUESS_LIMIT
from core.merging import PERSON_COLUMNS
from core.migrate import downgrade, upgrade
from core.models import (
    Base,
    Delivery,
    Follow,
    GenerationJob,
    Identity,
    Like,
    LinkCode,
    LinkGuess,
    Notification,
    Person,
    Post,
    utcnow,
)
from tests.core.test_generation_queue import ScriptedBackend, count, make_core, until  # noqa: F401  (fixture)
from tests.core.test_migrations import empty_url  # noqa: F401  (fixture)
from tests.fakes.platform import FakeMessenger
from tests.support import Chat, actor

CODE = re.compile(r"code: ([A-Z0-9]{4}-[A-Z0-9]{4})")

ROOT = Path(__file__).resolve().parents[2]


async def said(chat: Chat, who: str, line: str, platform: str) -> str:
    return "\n".join(r.text for r in await chat.say(who, line, platform))


async def code_of(chat: Chat, who: str, platform: str) -> str:
    found = CODE.search(await said(chat, who, "/link", platform))
    assert found, "no code in the reply"
    return found.group(1)


async def post_on(chat: Chat, who: str, platform: str, prompt: str = "a fox") -> int:
    job = await chat.finish(await chat.say(who, f"/imagine {prompt}", platform))
    assert job.status == "done" and job.post_id is not None, job.error
    return job.post_id


async def pid(chat: Chat, handle: str) -> int:
    async with chat.core.sessions() as session:
        found = await session.scalar(select(Person.id).where(Person.handle == handle))
    assert found is not None, handle
    return found


async def link(chat: Chat, first: tuple[str, str], second: tuple[str, str]) -> str:
    """`first` asks for a code, `second` redeems it; returns the redeemer's reply."""
    code = await code_of(chat, *first)
    return await said(chat, second[0], f"/link {code}", second[1])


# --- codes ------------------------------------------------------------------------------------------------


async def test_a_code_is_eight_unambiguous_characters_stored_only_as_a_hash(chat: Chat) -> None:
    code = await code_of(chat, "tom", "telegram")
    raw = code.replace("-", "")
    assert len(raw) == CODE_LENGTH >= 8 and set(raw) <= set(ALPHABET)
    assert not set("01OIL") & set(ALPHABET)
    async with chat.core.sessions() as session:
        [row] = (await session.scalars(select(LinkCode))).all()
    assert raw not in row.code_hash and len(row.code_hash) == 64
    assert timedelta(minutes=9) < row.expires_at - row.created_at <= timedelta(minutes=10)


async def test_a_new_code_replaces_the_unused_one(chat: Chat) -> None:
    old = await code_of(chat, "tom", "telegram")
    new = await code_of(chat, "tom", "telegram")
    assert "not right" in await said(chat, "dora", f"/link {old}", "discord")
    assert "Linked" in await said(chat, "dora", f"/link {new.lower().replace('-', ' ')}", "discord")


async def test_in_a_group_no_code_is_shown_or_made(chat: Chat) -> None:
    group = Actor("telegram", "tom", chat_id="-100", username="tom", private=False)
    [reply] = await chat.core.handle(group, "/link")
    assert "private chat" in reply.text and not CODE.search(reply.text)
    [reply] = await chat.core.handle(group, "/link ABCD-EFGH")
    assert "private chat" in reply.text
    async with chat.core.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(LinkCode)) == 0


async def test_a_wrong_code_is_refused_and_changes_nothing(chat: Chat) -> None:
    await chat.say("tom", "/start", "telegram")
    assert "not right" in await said(chat, "dora", "/link ZZZZ-ZZZZ", "discord")
    assert "not right" in await said(chat, "dora", "/link !!", "discord")
    async with chat.core.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Person)) == 2


async def test_an_expired_code_is_refused(chat: Chat) -> None:
    code = await code_of(chat, "tom", "telegram")
    async with chat.core.sessions() as session:
        await session.execute(update(LinkCode).values(expires_at=utcnow() - timedelta(seconds=1)))
        await session.commit()
    assert "expired" in await said(chat, "dora", f"/link {code}", "discord")
    async with chat.core.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Person)) == 2


async def test_a_used_code_is_refused_to_anyone_else_and_a_repeat_is_harmless(chat: Chat) -> None:
    code = await code_of(chat, "tom", "telegram")
    assert "Linked" in await said(chat, "dora", f"/link {code}", "discord")
    # The same message again (a retry, a double tap): already one person, nothing happens twice.
    assert "already linked" in await said(chat, "dora", f"/link {code}", "discord")
    assert "already used" in await said(chat, "carl", f"/link {code}", "console")
    async with chat.core.sessions() as session:
        assert sorted(await session.scalars(select(Person.handle))) == ["carl", "tom"]


async def test_your_own_code_is_for_your_other_account(chat: Chat) -> None:
    code = await code_of(chat, "tom", "telegram")
    assert "other account" in await said(chat, "tom", f"/link {code}", "telegram")


async def test_two_accounts_on_one_platform_are_not_linked(chat: Chat) -> None:
    reply = await link(chat, ("tom", "telegram"), ("tim", "telegram"))
    assert "one account per platform" in reply
    async with chat.core.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Person)) == 2


async def test_wrong_guesses_are_limited_even_for_the_right_code(chat: Chat) -> None:
    code = await code_of(chat, "tom", "telegram")
    for _ in range(GUESS_LIMIT):
        assert "not right" in await said(chat, "dora", "/link ZZZZ-ZZZZ", "discord")
    assert "Too many wrong codes" in await said(chat, "dora", f"/link {code}", "discord")
    async with chat.core.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Person)) == 2
        # Ten minutes later the guesses no longer count.
        await session.execute(update(LinkGuess).values(created_at=utcnow() - timedelta(minutes=11)))
        await session.commit()
    assert "Linked" in await said(chat, "dora", f"/link {code}", "discord")


# --- the merge --------------------------------------------------------------------------------------------


async def test_linking_moves_every_row_to_the_older_account(chat: Chat) -> None:
    """tom (Telegram, older) and dora (Discord) both post, like and follow before dora redeems tom's code."""
    await chat.say("tom", "/start", "telegram")
    await chat.say("dora", "/digest 07:30 Europe/Berlin", "discord")
    tom_post = await post_on(chat, "tom", "telegram", "tom's fox")
    dora_post = await post_on(chat, "dora", "discord", "dora's owl")
    bob_post = await post_on(chat, "bob", "console", "bob's cat")
    for who, platform in (("tom", "telegram"), ("dora", "discord")):
        await chat.say(who, f"/like {bob_post}", platform)  # the same post liked by both
        await chat.say(who, "/follow bob", platform)  # the same person followed by both
    await chat.say("tom", f"/like {dora_post}", "telegram")
    await chat.say("dora", f"/like {tom_post}", "discord")
    await chat.say("tom", "/follow dora", "telegram")  # between the two: gone after the merge
    await chat.say("bob", "/follow tom")
    await chat.say("bob", "/follow dora")  # followed by the same person twice
    await chat.say("carl", "/follow dora")
    tom, dora, bob, carl = [await pid(chat, h) for h in ("tom", "dora", "bob", "carl")]

    reply = await link(chat, ("tom", "telegram"), ("dora", "discord"))
    assert "@tom" in reply and "@dora" in reply and "Linked" in reply

    async with chat.core.sessions() as session:
        assert sorted(await session.scalars(select(Person.handle))) == ["bob", "carl", "tom"]
        for column in PERSON_COLUMNS:  # nothing anywhere still refers to the absorbed person
            assert await session.scalar(select(func.count()).where(column == dora)) == 0, column
        identities = (await session.execute(select(Identity.platform, Identity.person_id))).all()
        assert sorted(identities) == sorted([("telegram", tom), ("discord", tom), ("console", bob), ("console", carl)])
        posts = dict((await session.execute(select(Post.id, Post.author_id))).all())
        assert posts == {tom_post: tom, dora_post: tom, bob_post: bob}
        likes = set((await session.execute(select(Like.post_id, Like.person_id))).all())
        assert likes == {(bob_post, tom), (dora_post, tom), (tom_post, tom)}
        counts = dict((await session.execute(select(Post.id, Post.like_count))).all())
        assert counts == {tom_post: 1, dora_post: 1, bob_post: 1}  # equal to the rows
        follows = set((await session.execute(select(Follow.follower_id, Follow.followee_id))).all())
        assert follows == {(tom, bob), (bob, tom), (carl, tom)}
        assert set(await session.scalars(select(GenerationJob.person_id))) == {tom, bob}
        assert await session.scalar(select(func.count()).where(GenerationJob.person_id == tom)) == 2
        news = (
            await session.execute(select(Notification.recipient_id, Notification.actor_id, Notification.kind))
        ).all()
        assert sorted(news) == sorted(
            [(bob, tom, "like"), (bob, tom, "follow"), (tom, bob, "follow"), (tom, carl, "follow")]
        )
        survivor = await session.get(Person, tom)
        assert survivor is not None
        assert (survivor.timezone, survivor.digest_time) == ("Europe/Berlin", "07:30")  # tom had set none
        told = (await session.execute(select(Delivery.platform, Delivery.chat_id).where(Delivery.kind == "text"))).all()
        assert told == [("telegram", "chat-tom")]  # the other account hears of it too

    profile = await said(chat, "dora", "/profile", "discord")
    assert "(@tom)" in profile and "On: Discord, Telegram" in profile
    assert "2 posts · 2 followers · 1 following · 2 likes received" in profile
    assert "made 2 of" in await said(chat, "tom", "/quota", "telegram")  # both accounts' images count today


async def test_the_older_account_survives_whichever_side_redeems(chat: Chat) -> None:
    await chat.say("tom", "/start", "telegram")
    await chat.say("dora", "/start", "discord")
    await link(chat, ("dora", "discord"), ("tom", "telegram"))
    assert "(@tom)" in await said(chat, "dora", "/profile", "discord")


async def test_the_other_account_is_told_on_its_platform(chat: Chat) -> None:
    telegram = FakeMessenger(platform="telegram")
    chat.core.register_messenger(telegram)
    await link(chat, ("tom", "telegram"), ("dora", "discord"))
    chat.core.outbox.wake()
    async with asyncio.timeout(10):
        await chat.core.drain()
    [message] = telegram.to("chat-tom")
    assert "Linked" in message.text and "@tom" in message.text


def test_every_column_that_refers_to_a_person_is_merged() -> None:
    referring = {
        (table.name, column.name)
        for table in Base.metadata.tables.values()
        for column in table.columns
        for key in column.foreign_keys
        if isinstance(key, ForeignKey) and key.column.table.name == "people"
    }
    assert referring == {(c.class_.__tablename__, c.key) for c in PERSON_COLUMNS}


async def test_two_redeems_of_one_code_at_once_link_once(chat: Chat) -> None:
    await chat.say("dora", "/start", "discord")
    await chat.say("carl", "/start", "console")
    code = await code_of(chat, "tom", "telegram")
    replies = await asyncio.gather(
        said(chat, "dora", f"/link {code}", "discord"), said(chat, "carl", f"/link {code}", "console")
    )
    assert sum("Linked" in r for r in replies) == 1, replies
    assert sum("already used" in r for r in replies) == 1, replies
    async with chat.core.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Person)) == 2


# --- one network ------------------------------------------------------------------------------------------


async def test_a_linked_person_follows_and_reads_the_feed_from_either_platform(chat: Chat) -> None:
    await chat.say("tom", "/start", "telegram")
    await link(chat, ("tom", "telegram"), ("dora", "discord"))
    bob_post = await post_on(chat, "bob", "console", "bob's cat")
    assert "You now follow @bob" in await said(chat, "dora", "/follow bob", "discord")
    assert f"#{bob_post}" in await said(chat, "tom", "/feed", "telegram")  # followed on Discord, read on Telegram
    assert "already follow @bob" in await said(chat, "tom", "/follow bob", "telegram")
    dora_post = await post_on(chat, "dora", "discord", "posted on discord")
    await chat.say("bob", "/follow tom")
    assert f"#{dora_post} by @tom" in await said(chat, "bob", "/feed", "console")


async def test_news_goes_to_the_platform_last_active_then_to_another_reachable_one(chat: Chat) -> None:
    await chat.say("tom", "/start", "telegram")
    await link(chat, ("tom", "telegram"), ("dora", "discord"))
    tom = await pid(chat, "tom")
    async with chat.core.sessions() as session:
        await session.execute(
            update(Identity).where(Identity.platform == "telegram").values(last_seen_at=utcnow() + timedelta(minutes=1))
        )
        await session.commit()
        assert (await reachable_targets(session, [tom]))[tom] == Target("telegram", "chat-tom")
        await session.execute(update(Identity).where(Identity.platform == "telegram").values(unreachable=True))
        await session.commit()
        assert (await reachable_targets(session, [tom]))[tom] == Target("discord", "chat-dora")


# --- unlink -----------------------------------------------------------------------------------------------


async def test_unlink_splits_an_account_into_a_fresh_person_and_the_posts_stay(chat: Chat) -> None:
    await chat.say("tom", "/start", "telegram")
    dora_post = await post_on(chat, "dora", "discord")
    await link(chat, ("tom", "telegram"), ("dora", "discord"))
    reply = await said(chat, "tom", "/unlink Discord", "telegram")
    assert "Discord account is now a profile of its own, @dora" in reply
    tom, dora = await pid(chat, "tom"), await pid(chat, "dora")
    async with chat.core.sessions() as session:
        assert await session.scalar(select(Post.author_id).where(Post.id == dora_post)) == tom
        assert await session.scalar(select(Identity.person_id).where(Identity.platform == "discord")) == dora
        told = (await session.execute(select(Delivery.platform, Delivery.chat_id).where(Delivery.kind == "text"))).all()
        assert ("discord", "chat-dora") in told
    assert "On: Telegram" in await said(chat, "tom", "/profile", "telegram")
    assert "(@dora)" in await said(chat, "dora", "/profile", "discord")
    assert "no Discord account" in await said(chat, "tom", "/unlink discord", "telegram")
    assert "only account" in await said(chat, "tom", "/unlink telegram", "telegram")
    assert "Usage" in await said(chat, "tom", "/unlink", "telegram")
    # And they can be linked again.
    assert "Linked" in await link(chat, ("tom", "telegram"), ("dora", "discord"))


async def test_a_person_on_one_platform_shows_it_on_the_profile(chat: Chat) -> None:
    await chat.core.handle(actor("tom", "telegram"), "/start")
    assert "On: Telegram" in await said(chat, "bob", "/profile tom", "console")


async def test_the_same_redeem_sent_twice_at_once_links_once(chat: Chat) -> None:
    await chat.say("dora", "/start", "discord")
    code = await code_of(chat, "tom", "telegram")
    replies = await asyncio.gather(*(said(chat, "dora", f"/link {code}", "discord") for _ in range(2)))
    assert sorted("Linked" in r for r in replies) == [False, True], replies
    assert any("already linked" in r for r in replies), replies
    async with chat.core.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Person)) == 1


# A process that redeems a code, says so before committing, then waits to be killed.
REDEEM_AND_HANG = """
import asyncio, sys
from sqlalchemy import select
from core import linking
from core.db import create_engine, create_sessionmaker
from core.models import Identity

async def main(url, user, code):
    engine = create_engine(url)
    async with create_sessionmaker(engine)() as session:
        identity = await session.scalar(select(Identity).where(Identity.platform_user_id == user))
        await linking.redeem(session, identity, code)
        await session.flush()
        print("merged, not committed", flush=True)
        await asyncio.sleep(60)

asyncio.run(main(*sys.argv[1:]))
"""


async def test_a_process_killed_in_the_middle_of_a_merge_leaves_both_people_whole(
    chat: Chat, database_url: str
) -> None:
    await chat.say("tom", "/start", "telegram")
    dora_post = await post_on(chat, "dora", "discord")
    await chat.say("dora", "/follow tom", "discord")
    code = await code_of(chat, "tom", "telegram")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        REDEEM_AND_HANG,
        database_url,
        "dora",
        code,
        stdout=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    assert process.stdout is not None
    async with asyncio.timeout(30):
        assert b"merged" in await process.stdout.readline()
    process.kill()  # SIGKILL: no cleanup, no rollback from the process itself
    await process.wait()
    async with chat.core.sessions() as session:
        assert sorted(await session.scalars(select(Person.handle))) == ["dora", "tom"]
        assert await session.scalar(select(Post.author_id).where(Post.id == dora_post)) == await pid(chat, "dora")
        assert await session.scalar(select(func.count()).select_from(Follow)) == 1
        assert await session.scalar(select(LinkCode.used_at)) is None
    # The code was never spent: the person simply sends it again.
    assert "Linked" in await said(chat, "dora", f"/link {code}", "discord")


async def test_the_migration_adds_link_codes_to_a_database_with_people(empty_url: str) -> None:  # noqa: F811
    engine = create_engine(empty_url)
    try:
        await upgrade(engine, "0005")
        async with engine.begin() as conn:
            await conn.execute(
                text("INSERT INTO people (id, handle, display_name, bio, created_at) VALUES (1, 'ada', 'Ada', '', :t)"),
                {"t": utcnow()},
            )
            await conn.execute(
                text(
                    "INSERT INTO identities (id, person_id, platform, platform_user_id, unreachable, last_seen_at)"
                    " VALUES (1, 1, 'telegram', '7', false, :t)"
                ),
                {"t": utcnow()},
            )
        await upgrade(engine)
        sessions = create_sessionmaker(engine)
        async with sessions() as session:
            person, identity = await session.get(Person, 1), await session.get(Identity, 1)
            assert person is not None and identity is not None
            code = await linking.create_code(session, person, identity)
            await session.commit()
        async with sessions() as session:
            assert await session.scalar(select(func.count()).select_from(LinkCode)) == 1
            assert await session.scalar(select(Person.handle)) == "ada"
        assert len(code) == CODE_LENGTH
        await downgrade(engine, "0005")
        async with engine.connect() as conn:
            assert await conn.scalar(text("SELECT count(*) FROM identities")) == 1
    finally:
        await engine.dispose()


async def test_an_image_in_progress_during_the_merge_is_posted_by_the_merged_person(make_core) -> None:  # noqa: F811
    backend = ScriptedBackend()
    backend.gate = asyncio.Event()
    chat = Chat(await make_core(backend))
    await chat.say("tom", "/start", "telegram")
    await chat.say("dora", "/imagine an owl at dusk", "discord")
    await until(lambda: count(chat.core, GenerationJob, GenerationJob.status == "running"), 1)
    assert "Linked" in await link(chat, ("tom", "telegram"), ("dora", "discord"))
    backend.gate.set()  # the worker loaded the job before the merge, and finishes after it
    await until(lambda: count(chat.core, GenerationJob, GenerationJob.status == "done"), 1)
    async with chat.core.sessions() as session:
        assert await session.scalar(select(Post.author_id)) == await pid(chat, "tom")


async def test_a_digest_either_account_had_today_is_the_merged_persons_one_for_today(chat: Chat) -> None:
    await chat.say("tom", "/start", "telegram")
    await chat.say("dora", "/start", "discord")
    now = utcnow()
    first = await compose_pass(chat.core.sessions, chat.core.settings, now, force=True, handle="dora")
    [day] = first.dates
    await link(chat, ("tom", "telegram"), ("dora", "discord"))
    again = await compose_pass(chat.core.sessions, chat.core.settings, now, force=True)
    assert again.considered == 0  # one digest a day, not one per former account
    async with chat.core.sessions() as session:
        keys = list(await session.scalars(select(Delivery.key).where(Delivery.kind == "digest")))
    assert keys == [digest_key(await pid(chat, "tom"), day)]
