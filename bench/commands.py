"""Latency of the real command layer on a built network: `Core.handle` and `Core.press`, real Actors.

Everything random (who asks, for which post or person) is drawn before the clock starts. Writes undo
themselves: every like is toggled twice and every follow is followed by an unfollow, so a cached
network stays as it was built.
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import partial

from sqlalchemy import func, select, update

from bench.floor import Floor
from bench.network import PLATFORM, chat_of
from core.actor import Actor
from core.app import OOPS, Core
from core.gen.backend import ImageRequest
from core.gen.local import LocalBackend
from core.models import Follow, Identity, Person, Post, utcnow
from core.ratelimit import DOUBLE_PRESS_SECONDS
from core.replies import Reply

VIEWERS = 200
DEEP = timedelta(days=15)  # the deep feed page starts this far back
LIKE_WINDOW = timedelta(days=2)  # people mostly like what is new

Call = Callable[[], Awaitable[list[Reply]]]
RawCall = Callable[[], Awaitable[object]]
Check = Callable[[list[Reply]], bool]


def presses_apart(core: Core) -> None:
    """Every call as if it came a few seconds after the one before. The benchmark presses a like and at once
    presses it again to take it back, which a person's double tap within DOUBLE_PRESS_SECONDS would be, and the
    core coalesces that (one press, "Got it"); people who mean it press a second time later."""
    ticks = itertools.count(start=time.monotonic(), step=2 * DOUBLE_PRESS_SECONDS)
    core.limiter.clock = lambda: next(ticks)


class BenchError(Exception):
    """A command answered something other than what it should have: the figures would be wrong."""


@dataclass(slots=True)
class Timing:
    label: str
    samples_ms: list[float]
    floor_ms: list[float] | None = None  # the same calls' minimal SQL straight through the driver (bench/floor.py)

    def percentile(self, q: float) -> float:
        return nearest_rank(self.samples_ms, q)

    def floor(self, q: float) -> float | None:
        return nearest_rank(self.floor_ms, q) if self.floor_ms else None


def nearest_rank(samples: list[float], q: float) -> float:
    """The smallest sample with at least q% of samples at or below it."""
    ordered = sorted(samples)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


@dataclass(frozen=True, slots=True)
class Plan:
    viewers: list[Actor]
    viewer_ids: list[int]
    deep_cursor: int
    profiles: list[str]  # handles, drawn by popularity: people look at the well-followed more
    like_posts: list[int]
    follows: list[tuple[Actor, str]]  # (who, whom they do not follow yet)


def actor_for(person_id: int, handle: str) -> Actor:
    return Actor(PLATFORM, str(person_id), chat_id=chat_of(person_id), username=handle, display_name=handle)


async def make_plan(core: Core, count: int, seed: int) -> Plan:
    rng = random.Random(seed)
    now = utcnow()
    async with core.sessions() as session:
        people = dict((await session.execute(select(Person.id, Person.handle).order_by(Person.id))).all())
        ids = list(people)
        # Viewers follow someone: an empty feed is a different, cheaper answer than the one measured.
        active = sorted(set(await session.scalars(select(Follow.follower_id).distinct())))
        viewer_ids = rng.sample(active, min(VIEWERS, len(active)))
        deep = await session.scalar(select(func.min(Post.id)).where(Post.created_at >= now - DEEP))
        recent = list(
            await session.scalars(
                select(Post.id).where(Post.visibility == "public", Post.created_at >= now - LIKE_WINDOW)
            )
        )
        fan_counts = select(Follow.followee_id, func.count()).group_by(Follow.followee_id)
        fans = dict((await session.execute(fan_counts)).all())
        theirs = select(Follow.follower_id, Follow.followee_id).where(Follow.follower_id.in_(viewer_ids))
        followed = (await session.execute(theirs)).all()
    if deep is None or not recent:
        raise BenchError("the network has no posts in the benchmark's windows; rebuild it with --rebuild")
    weights = [fans.get(pid, 0) + 1 for pid in ids]
    following = {(a, b) for a, b in followed}
    follows: list[tuple[Actor, str]] = []
    while len(follows) < count:
        who = viewer_ids[len(follows) % len(viewer_ids)]
        [whom] = rng.choices(ids, weights=weights)
        if whom != who and (who, whom) not in following:
            follows.append((actor_for(who, people[who]), people[whom]))
    return Plan(
        viewers=[actor_for(pid, people[pid]) for pid in viewer_ids],
        viewer_ids=viewer_ids,
        deep_cursor=deep,
        profiles=[people[pid] for pid in rng.choices(ids, weights=weights, k=count)],
        like_posts=[rng.choice(recent) for _ in range(count)],
        follows=follows,
    )


async def mark_viewers_seen(core: Core, viewer_ids: list[int]) -> None:
    """Commands refresh `last_seen_at` at most every few minutes; measure the steady state, not that write."""
    async with core.sessions() as session:
        await session.execute(
            update(Identity)
            .where(Identity.platform == PLATFORM, Identity.person_id.in_(viewer_ids))
            .values(last_seen_at=utcnow())
        )
        await session.commit()


def _has_post(replies: list[Reply]) -> bool:
    return any(r.post_id is not None for r in replies)


def _says(words: str) -> Check:
    return lambda replies: any(words in r.text for r in replies)


async def _raw(calls: list[RawCall], warmup: int) -> list[float]:
    samples: list[float] = []
    for index, call in enumerate(calls):
        started = time.perf_counter()
        await call()
        if index >= warmup:
            samples.append((time.perf_counter() - started) * 1000)
    return samples


async def _timed(label: str, calls: list[Call], checks: list[Check], warmup: int) -> Timing:
    samples: list[float] = []
    for index, (call, check) in enumerate(zip(calls, checks, strict=True)):
        started = time.perf_counter()
        replies = await call()
        elapsed = (time.perf_counter() - started) * 1000
        if any(r.text == OOPS for r in replies) or not check(replies):
            raise BenchError(f"{label}: unexpected answer {[r.text for r in replies]!r}")
        if index >= warmup:
            samples.append(elapsed)
    return Timing(label, samples)


async def measure(core: Core, iterations: int, warmup: int, floor: Floor, seed: int = 7) -> list[Timing]:
    """Each command's timings and, right after each, the same calls' floor (the minimal SQL, bench/floor.py)."""
    total = iterations + warmup
    plan = await make_plan(core, total, seed)
    await mark_viewers_seen(core, plan.viewer_ids)

    def viewer(i: int) -> Actor:
        return plan.viewers[i % len(plan.viewers)]

    def any_answer(replies: list[Reply]) -> bool:
        return bool(replies)

    def uid(i: int) -> str:
        return viewer(i).user_id

    raw = floor
    liked = [post for post in plan.like_posts[: (total + 1) // 2] for _ in range(2)]  # each toggled twice
    rows: list[tuple[str, list[Call], Check, list[RawCall]]] = [
        (
            "/feed (first page)",
            [partial(core.handle, viewer(i), "/feed") for i in range(total)],
            _has_post,
            [partial(raw.feed, uid(i)) for i in range(total)],
        ),
        (
            "/feed (deep page, Older ▶)",
            [partial(core.press, viewer(i), f"feed before {plan.deep_cursor}") for i in range(total)],
            any_answer,  # someone who follows only new people may have nothing that old
            [partial(raw.feed, uid(i), plan.deep_cursor) for i in range(total)],
        ),
        (
            "/profile <handle>",
            [partial(core.handle, viewer(i), f"/profile {h}") for i, h in enumerate(plan.profiles)],
            _says("following"),
            [partial(raw.profile, uid(i), h) for i, h in enumerate(plan.profiles)],
        ),
        (
            "/top",
            [partial(core.handle, viewer(i), "/top") for i in range(total)],
            _has_post,
            [partial(raw.top, uid(i)) for i in range(total)],
        ),
        (
            "/like <post> (button)",  # a like toggled twice by the same person is back where it was
            [partial(core.press, viewer(i // 2), f"like {p}") for i, p in enumerate(liked)],
            _says("like"),
            [partial(raw.like, uid(i // 2), p) for i, p in enumerate(liked)],
        ),
    ]
    timings = []
    for label, calls, check, floor_calls in rows:
        timing = await _timed(label, calls, [check] * len(calls), warmup)
        timing.floor_ms = await _raw(floor_calls, warmup)
        timings.append(timing)
    return timings + await _follows(core, floor, plan, warmup)


async def _follows(core: Core, floor: Floor, plan: Plan, warmup: int) -> list[Timing]:
    """Follow then unfollow the same person, so the network stays as built; both are measured."""
    follow_calls: list[Call] = []
    follow_checks: list[Check] = []
    floor_calls: list[RawCall] = []
    for who, whom in plan.follows:
        follow_calls.append(partial(core.press, who, f"follow {whom}"))
        follow_calls.append(partial(core.handle, who, f"/unfollow {whom}"))
        follow_checks += [_says("You now follow"), _says("You no longer follow")]
        floor_calls += [partial(floor.follow, who.user_id, whom), partial(floor.unfollow, who.user_id, whom)]
    both = await _timed("follow", follow_calls, follow_checks, 2 * warmup)
    raws = await _raw(floor_calls, 2 * warmup)
    return [
        Timing("/follow <handle> (button)", both.samples_ms[0::2], raws[0::2]),
        Timing("/unfollow <handle>", both.samples_ms[1::2], raws[1::2]),
    ]


IMAGE_PROMPTS = (
    "a red fox in the snow",
    "a misty forest at dawn",
    "a neon city skyline at night",
    "calm ocean waves at sunset",
    "a galaxy of stars over mountains",
)


def image_timing(count: int) -> Timing:
    """Milliseconds per 1024x1024 image of the offline generator, PNG encoding included."""
    backend = LocalBackend()
    backend.generate_sync(ImageRequest("warm up", 1))
    samples = []
    for index in range(count):
        request = ImageRequest(IMAGE_PROMPTS[index % len(IMAGE_PROMPTS)], seed=index, width=1024, height=1024)
        started = time.perf_counter()
        backend.generate_sync(request)
        samples.append((time.perf_counter() - started) * 1000)
    return Timing("offline image 1024x1024", samples)
