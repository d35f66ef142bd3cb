"""/feed (people you follow, paged), /top (last 24 hours, time-decayed likes) and /profile counts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from core.feed.ranking import hot_score
from core.feed.timeline import PAGE_SIZE
from core.models import Person, Post, utcnow
from core.replies import Reply
from tests.support import Chat


def shown(replies: list[Reply]) -> list[int]:
    return [r.post_id for r in replies if r.post_id is not None]


def nav(replies: list[Reply]) -> dict[str, str]:
    """Feed navigation buttons by label word ("Older", "Newer") -> action."""
    found: dict[str, str] = {}
    for reply in replies:
        if reply.post_id is None:
            for row in reply.buttons:
                for button in row:
                    found["Older" if "Older" in button.label else "Newer"] = button.action
    return found


async def age_post(chat: Chat, post_id: int, hours: float, likes: int | None = None) -> None:
    """Move a post back in time, keeping its stored hot score consistent with its age and likes."""
    async with chat.core.sessions() as session:
        post = await session.get(Post, post_id)
        assert post is not None
        created = utcnow() - timedelta(hours=hours)
        like_count = post.like_count if likes is None else likes
        await session.execute(
            update(Post)
            .where(Post.id == post_id)
            .values(created_at=created, like_count=like_count, hot=hot_score(like_count, created))
        )
        await session.commit()


# /feed


async def test_feed_shows_only_followed_peoples_public_posts_newest_first(chat: Chat) -> None:
    await chat.say("alice", "/start")
    await chat.say("bob", "/start")
    await chat.say("reader", "/follow alice")
    await chat.say("reader", "/follow bob")
    a1 = await chat.post("alice", "first fox")
    b1 = await chat.post("bob", "bob's boat")
    await chat.post("carol", "not followed")
    await chat.post("alice", "hidden --private")
    await chat.post("reader", "my own post")
    a2 = await chat.post("alice", "second fox")
    replies = await chat.say("reader", "/feed")
    assert shown(replies) == [a2, b1, a1]
    assert nav(replies) == {}  # one page only
    assert all(r.image is not None for r in replies if r.post_id is not None)


async def test_feed_pages_through_twelve_posts_without_gaps_or_duplicates(chat: Chat) -> None:
    await chat.say("alice", "/start")
    await chat.say("reader", "/follow alice")
    ids = [await chat.post("alice", f"fox number {i}") for i in range(12)]
    newest_first = list(reversed(ids))

    first = await chat.say("reader", "/feed")
    assert shown(first) == newest_first[:PAGE_SIZE]
    assert set(nav(first)) == {"Older"}
    second = await chat.press("reader", nav(first)["Older"])
    assert shown(second) == newest_first[PAGE_SIZE : 2 * PAGE_SIZE]
    assert set(nav(second)) == {"Older", "Newer"}
    third = await chat.press("reader", nav(second)["Older"])
    assert shown(third) == newest_first[2 * PAGE_SIZE :]
    assert set(nav(third)) == {"Newer"}
    seen = shown(first) + shown(second) + shown(third)
    assert seen == newest_first  # every post once, in order

    back = await chat.press("reader", nav(third)["Newer"])
    assert shown(back) == shown(second)
    top = await chat.press("reader", nav(back)["Newer"])
    assert shown(top) == shown(first)
    assert set(nav(top)) == {"Older"}
    for action in (a for page in (first, second, third, back) for a in nav(page).values()):
        assert len(action.encode()) <= 64


@pytest.mark.parametrize("total", [PAGE_SIZE, PAGE_SIZE + 1])
async def test_older_button_appears_only_when_there_are_older_posts(chat: Chat, total: int) -> None:
    await chat.say("alice", "/start")
    await chat.say("reader", "/follow alice")
    ids = [await chat.post("alice", f"boat {i}") for i in range(total)]
    first = await chat.say("reader", "/feed")
    if total == PAGE_SIZE:
        assert nav(first) == {} and shown(first) == list(reversed(ids))
        return
    older = await chat.press("reader", nav(first)["Older"])
    assert shown(older) == [ids[0]] and set(nav(older)) == {"Newer"}


async def test_empty_feed_and_end_of_feed_messages(chat: Chat) -> None:
    assert "Your feed is empty" in await chat.text("reader", "/feed")
    await chat.say("alice", "/start")
    await chat.say("reader", "/follow alice")
    assert "Your feed is empty" in await chat.text("reader", "/feed")
    only = await chat.post("alice")
    assert "No more posts" in await chat.text("reader", f"/feed before {only}")
    assert "No more posts" in await chat.text("reader", "/feed before 0")
    assert "No more posts" in await chat.text("reader", f"/feed after {only}")


@pytest.mark.parametrize(
    "args",
    ["sideways", "before", "before abc", "after -3", "before 1 2", "before ²", "before 99999999999999999999999"],
)
async def test_malformed_feed_arguments_get_one_clear_line(chat: Chat, args: str) -> None:
    [reply] = await chat.say("reader", f"/feed {args}")
    assert "Usage: /feed" in reply.text or "not a post number" in reply.text
    assert "\n" not in reply.text


async def test_unfollowing_removes_posts_from_the_feed(chat: Chat) -> None:
    await chat.say("alice", "/start")
    await chat.say("reader", "/follow alice")
    await chat.post("alice")
    await chat.say("reader", "/unfollow alice")
    assert "Your feed is empty" in await chat.text("reader", "/feed")


# /top


async def test_top_ranks_by_likes_within_the_last_day_only(chat: Chat) -> None:
    quiet = await chat.post("alice", "a quiet pond")
    popular = await chat.post("bob", "a popular parrot")
    old = await chat.post("carol", "an old oak")
    await chat.post("alice", "private thing --private")
    for fan in ("f1", "f2", "f3"):
        await chat.say(fan, f"/like {popular}")
    await age_post(chat, old, hours=30, likes=100)  # very liked, but more than 24 hours old
    ranked = shown(await chat.say("reader", "/top"))
    assert ranked == [popular, quiet]


async def test_top_time_decay_lets_a_newer_post_beat_an_older_one_with_the_same_likes(chat: Chat) -> None:
    older = await chat.post("alice", "older lake")
    newer = await chat.post("bob", "newer lake")
    await age_post(chat, older, hours=20, likes=3)
    await age_post(chat, newer, hours=1, likes=3)
    assert shown(await chat.say("reader", "/top")) == [newer, older]
    # Many more likes outweigh the age.
    await age_post(chat, older, hours=20, likes=300)
    assert shown(await chat.say("reader", "/top")) == [older, newer]


async def test_top_likes_given_after_posting_are_ranked(chat: Chat) -> None:
    first = await chat.post("alice", "first")
    second = await chat.post("bob", "second")
    assert shown(await chat.say("reader", "/top")) == [second, first]  # equal likes: newer first
    for fan in ("f1", "f2", "f3", "f4"):
        await chat.say(fan, f"/like {first}")
    assert shown(await chat.say("reader", "/top")) == [first, second]


async def test_top_when_nothing_was_posted(chat: Chat) -> None:
    assert "Nothing posted in the last 24 hours" in await chat.text("reader", "/top")


def test_hot_score_doubles_likes_per_four_hours() -> None:
    now = utcnow()
    assert hot_score(3, now - timedelta(hours=4)) == pytest.approx(hot_score(1, now))
    assert hot_score(0, now) > hot_score(0, now - timedelta(hours=1))
    assert hot_score(10, now) > hot_score(9, now)


# /profile


async def test_profile_counts_posts_followers_following_and_likes_received(chat: Chat) -> None:
    p1 = await chat.post("alice", "one")
    p2 = await chat.post("alice", "two")
    await chat.post("alice", "three --private")
    for who in ("bob", "carol"):
        await chat.say(who, "/follow alice")
        await chat.say(who, f"/like {p1}")
    await chat.say("bob", f"/like {p2}")
    await chat.say("alice", "/follow bob")
    profile = await chat.text("dave", "/profile alice")
    assert "2 posts · 2 followers · 1 following · 3 likes received" in profile
    assert "one" in profile and "two" in profile and "three" not in profile
    # Her own profile, by handle or not, counts and lists her private post too.
    for line in ("/profile", "/profile alice", "/profile @alice"):
        own = await chat.text("alice", line)
        assert "3 posts · 2 followers · 1 following · 3 likes received" in own, line
        assert "three" in own and "On: Console" in own, line


async def test_profile_latest_posts_are_buttons_and_others_get_a_follow_button(chat: Chat) -> None:
    ids = [await chat.post("alice", f"fox {i}") for i in range(7)]
    [theirs] = await chat.say("bob", "/profile @alice")
    [posts_row, follow_row] = theirs.buttons
    assert [b.action for b in posts_row] == [f"post {i}" for i in reversed(ids[-5:])]
    assert [b.label for b in posts_row] == [f"#{i}" for i in reversed(ids[-5:])]
    assert [b.action for b in follow_row] == ["follow alice"]
    [followed] = await chat.press("bob", "follow alice")
    assert followed.notice and "You now follow @alice" in followed.text
    [mine] = await chat.say("alice", "/profile")
    assert len(mine.buttons) == 1  # no follow button for yourself
    [opened] = await chat.press("bob", posts_row[0].action)
    assert opened.post_id == ids[-1]


async def test_profile_of_someone_without_posts(chat: Chat) -> None:
    await chat.say("alice", "/start")
    assert "No posts yet. Try /imagine" in await chat.text("alice", "/profile")
    other = await chat.text("bob", "/profile alice")
    assert "No posts yet." in other and "Try /imagine" not in other
    async with chat.core.sessions() as session:
        assert await session.scalar(select(Person.handle).where(Person.handle == "alice")) == "alice"
