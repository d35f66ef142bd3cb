"""A token bucket per person on every command: how long to wait, admins exempt, and presses of the
same button in a burst coalesced rather than refused."""

from __future__ import annotations

from core.app import Core
from core.ratelimit import RateLimiter
from tests.safety_support import post_row
from tests.support import Chat


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def limit(core: Core, burst: int = 3, per_minute: float = 6.0) -> Clock:
    clock = Clock()
    core.limiter = RateLimiter(burst, per_minute / 60, clock)
    return clock


async def test_past_the_burst_every_command_waits_and_is_told_how_long(chat: Chat) -> None:
    clock = limit(chat.core)
    for line in ("/start", "/help", "/like"):  # any command counts, even one written wrong
        assert "Slow down" not in await chat.text("alice", line)
    [refused] = await chat.say("alice", "/profile")
    assert refused.text == "Slow down a little: try again in 10 s." and refused.error
    assert "Slow down" not in await chat.text("bob", "/profile")  # per person
    clock.now += 4
    assert await chat.text("alice", "/profile") == "Slow down a little: try again in 6 s."
    clock.now += 6
    assert "(@alice)" in await chat.text("alice", "/profile")


async def test_admins_are_exempt(chat: Chat) -> None:
    limit(chat.core, burst=1)
    for _ in range(5):
        assert "Slow down" not in await chat.text("admin", "/help")


async def test_repeated_presses_of_one_button_past_the_limit_are_coalesced(chat: Chat) -> None:
    post_id = await chat.post("alice")
    clock = limit(chat.core, burst=2)
    liked, _card = await chat.press("bob", f"like {post_id}")
    assert "You liked" in liked.text
    await chat.say("bob", "/help")  # the bucket is empty now
    for _ in range(3):
        [again] = await chat.press("bob", f"like {post_id}")
        assert again.text == "⏳ Got it." and again.notice and not again.error
    row = await post_row(chat.core, post_id)
    assert row is not None and row.like_count == 1  # none of the burst ran
    [other] = await chat.press("bob", "follow alice")  # another button is refused as usual
    assert other.text.startswith("Slow down") and other.error
    clock.now += 10
    later, _card = await chat.press("bob", f"like {post_id}")
    assert "took back" in later.text


async def test_a_press_repeating_a_refused_press_is_refused_too_not_acknowledged(chat: Chat) -> None:
    # "Got it" would say the like was taken while nothing ran: the first press was refused, and the
    # repeats are that same refused press.
    post_id = await chat.post("alice")
    clock = limit(chat.core, burst=1)
    await chat.say("bob", "/help")  # the bucket is empty now
    [refused] = await chat.press("bob", f"like {post_id}")
    assert refused.text.startswith("Slow down") and refused.error
    clock.now += 1
    [again] = await chat.press("bob", f"like {post_id}")
    assert again.text.startswith("Slow down") and again.error
    row = await post_row(chat.core, post_id)
    assert row is not None and row.like_count == 0


async def test_a_double_tap_on_a_button_is_one_press_even_within_the_limit(chat: Chat) -> None:
    # A slow connection makes people tap twice: liking and at once un-liking would be no like at all.
    post_id = await chat.post("alice")
    clock = limit(chat.core, burst=10)
    liked, _card = await chat.press("bob", f"like {post_id}")
    assert "You liked" in liked.text
    clock.now += 0.4
    [again] = await chat.press("bob", f"like {post_id}")
    assert again.text == "⏳ Got it." and again.notice and not again.error
    row = await post_row(chat.core, post_id)
    assert row is not None and row.like_count == 1
    clock.now += 1.5  # a deliberate second press, a moment later, is its own press
    undone, _card = await chat.press("bob", f"like {post_id}")
    assert "took back" in undone.text
    row = await post_row(chat.core, post_id)
    assert row is not None and row.like_count == 0
