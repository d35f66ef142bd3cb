"""/block: both directions, an existing follow ends, the blocked person is not told."""

from __future__ import annotations

from tests.safety_support import in_digest, in_feed, in_top
from tests.support import Chat


async def test_blocking_ends_follows_both_ways_and_hides_posts_both_ways(chat: Chat) -> None:
    core = chat.core
    await chat.say("mira", "/start")
    await chat.say("pest", "/start")
    await chat.say("mira", "/follow pest")
    await chat.say("pest", "/follow mira")
    theirs = await chat.post("pest", "a pest's fox")
    mine = await chat.post("mira", "my fox")
    assert theirs in await in_feed(chat, "mira")

    assert "You blocked @pest" in await chat.text("mira", "/block @pest")
    assert await chat.text("mira", "/following") == "You don't follow anyone yet. Try /follow @handle."
    assert "@mira" not in await chat.text("pest", "/following")
    assert theirs not in await in_feed(chat, "mira")
    assert theirs not in await in_top(chat, "mira") and mine not in await in_top(chat, "pest")
    assert theirs not in await in_digest(core, "mira")
    assert mine not in await in_digest(core, "pest")
    # Their answers are those for a post they cannot see, and a follow is refused.
    assert await chat.text("pest", f"/like {mine}") == f"There is no post #{mine}."
    assert await chat.text("pest", f"/remix {mine} mine now") == f"There is no post #{mine}."
    # To the blocked person, the one who blocked them is nobody at all, as a post they cannot see.
    assert await chat.text("pest", "/follow mira") == "Nobody is called @mira."
    assert await chat.text("pest", "/profile mira") == "Nobody is called @mira."
    assert await chat.text("pest", "/follow @nobody_here") == "Nobody is called @nobody_here."
    assert await chat.text("mira", "/follow pest") == "You block @pest: /unblock @pest first."
    [profile] = await chat.say("mira", "/profile pest")
    assert "🚫 You block @pest" in profile.text
    assert all(not b.action.startswith("follow") for row in profile.buttons for b in row)
    assert await chat.text("mira", "/blocked") == "You block:\n@pest"
    # Others still see both.
    assert theirs in await in_top(chat, "other") and mine in await in_top(chat, "other")

    assert "You unblocked @pest" in await chat.text("mira", "/unblock pest")
    assert "You now follow" in await chat.text("pest", "/follow mira")
    assert await chat.text("mira", "/blocked") == "You don't block anyone."
