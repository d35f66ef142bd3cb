"""Profiles, handles and follows through the command layer."""

from __future__ import annotations

from sqlalchemy import func, select

from core.models import Follow, Identity, Person
from tests.support import Chat, actor


async def test_start_creates_a_profile_with_the_platform_username_as_handle(chat: Chat) -> None:
    text = await chat.text("alice", "/start")
    assert "@alice" in text
    profile = await chat.text("alice", "/profile")
    assert "Alice (@alice)" in profile
    assert "0 posts" in profile


async def test_handles_are_unique_across_platforms(chat: Chat) -> None:
    await chat.say("alice", "/start", platform="telegram")
    text = await chat.text("alice", "/start")  # another person, same username, on the console
    assert "@alice2" in text
    async with chat.core.sessions() as session:
        handles = sorted((await session.scalars(select(Person.handle))).all())
        identities = await session.scalar(select(func.count()).select_from(Identity))
    assert handles == ["alice", "alice2"]
    assert identities == 2


async def test_a_username_with_odd_characters_becomes_a_clean_handle(chat: Chat) -> None:
    from core.actor import Actor

    replies = await chat.core.handle(Actor("discord", "77", username="Zoë.Smith!", display_name="Zoë"), "/start")
    assert "@zoe_smith" in replies[0].text


async def test_any_command_creates_the_profile_on_first_contact(chat: Chat) -> None:
    assert "Your feed is empty" in await chat.text("carol", "/feed")
    assert "@carol" in await chat.text("carol", "/profile")


async def test_name_and_bio_show_on_the_profile(chat: Chat) -> None:
    await chat.say("alice", "/name Ada   Lovelace")
    await chat.say("alice", "/bio I paint foxes")
    profile = await chat.text("bob", "/profile @alice")
    assert "Ada Lovelace (@alice)" in profile
    assert "I paint foxes" in profile


async def test_bad_profile_input_is_refused_plainly(chat: Chat) -> None:
    assert "Give a name" in await chat.text("alice", "/name   ")
    assert "at most 64" in await chat.text("alice", "/name " + "x" * 65)
    assert "at most 280" in await chat.text("alice", "/bio " + "y" * 281)
    assert "Nobody is called @ghost" in await chat.text("alice", "/profile ghost")
    assert "is not a handle" in await chat.text("alice", "/profile @a!")


async def test_follow_with_or_without_at_and_list_both_ways(chat: Chat) -> None:
    await chat.say("bob", "/start")
    await chat.say("carol", "/start")
    assert "You now follow @bob" in await chat.text("alice", "/follow @bob")
    assert "You now follow @carol" in await chat.text("alice", "/follow carol")
    assert "already follow @bob" in await chat.text("alice", "/follow bob")
    following = await chat.text("alice", "/following")
    assert "(2)" in following and "@bob" in following and "@carol" in following
    assert "@alice" in await chat.text("bob", "/followers")
    profile = await chat.text("alice", "/profile bob")
    assert "1 follower" in profile


async def test_unfollow(chat: Chat) -> None:
    await chat.say("bob", "/start")
    await chat.say("alice", "/follow bob")
    assert "no longer follow @bob" in await chat.text("alice", "/unfollow @bob")
    assert "don't follow @bob" in await chat.text("alice", "/unfollow @bob")
    assert "don't follow anyone" in await chat.text("alice", "/following")


async def test_follow_mistakes_get_one_clear_line_and_write_nothing(chat: Chat) -> None:
    await chat.say("alice", "/start")
    assert "can't follow yourself" in await chat.text("alice", "/follow @alice")
    assert "Nobody is called @nobody" in await chat.text("alice", "/follow @nobody")
    assert "Usage: /follow @handle" in await chat.text("alice", "/follow")
    assert "Usage: /follow @handle" in await chat.text("alice", "/follow a b")
    async with chat.core.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Follow)) == 0


async def test_a_telegram_user_can_follow_a_discord_user(chat: Chat) -> None:
    await chat.say("dora", "/start", platform="discord")
    replies = await chat.core.handle(actor("tom", "telegram"), "/follow @dora")
    assert "You now follow @dora" in replies[0].text


async def test_unknown_commands_and_plain_text_get_a_hint(chat: Chat) -> None:
    assert "Unknown command /frobnicate" in await chat.text("alice", "/frobnicate now")
    assert "/imagine" in await chat.text("alice", "hello there")


async def test_help_lists_every_command_with_one_line(chat: Chat) -> None:
    text = await chat.text("alice", "/help")
    for name in (
        "start",
        "help",
        "imagine",
        "remix",
        "like",
        "follow",
        "unfollow",
        "following",
        "followers",
        "profile",
        "name",
        "bio",
        "feed",
        "top",
        "post",
        "delete",
    ):
        assert f"/{name}" in text, name


async def test_group_style_command_suffix_is_understood(chat: Chat) -> None:
    assert "Commands:" in await chat.text("alice", "/help@ImagesBot")


async def test_a_group_or_channel_is_never_taken_for_a_persons_own_chat(chat: Chat) -> None:
    from core.actor import Actor

    await chat.core.handle(Actor("telegram", "42", chat_id="-100777", username="gina", private=False), "/start")
    async with chat.core.sessions() as session:
        identity = await session.scalar(select(Identity).where(Identity.platform_user_id == "42"))
    assert identity is not None and identity.chat_id is None  # digests must not go to the group
    await chat.core.handle(Actor("telegram", "42", chat_id="42", username="gina"), "/help")
    await chat.core.handle(Actor("telegram", "42", chat_id="-100777", username="gina", private=False), "/help")
    async with chat.core.sessions() as session:
        identity = await session.scalar(select(Identity).where(Identity.platform_user_id == "42"))
    assert identity is not None and identity.chat_id == "42"
