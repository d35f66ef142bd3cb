"""A synthetic social network, the same for the same (shape, seed, now): people, follows, posts, likes.

Popularity is skewed the way real networks are: a few people are followed by many (a Zipf law
over a shuffled order), some people post far more than others (log-normal), and likes pile up on
a few posts (Pareto) of well-followed authors, mostly in a post's first hours. Rows come out in
batches of tuples, in the column order of the `*_COLUMNS` constants, ready for executemany or COPY.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import accumulate

from core.feed.ranking import hot_score

BATCH = 50_000
DAY = 86_400.0
ZIPF = 0.8  # follower popularity: the k-th most popular person gets weight k**-ZIPF
REMIX_SHARE = 0.04
PRIVATE_SHARE = 0.03

PEOPLE_COLUMNS = ("id", "handle", "display_name", "bio", "created_at")
IDENTITY_COLUMNS = (
    "id", "person_id", "platform", "platform_user_id", "chat_id", "username", "unreachable", "last_seen_at",
)  # fmt: skip
FOLLOW_COLUMNS = ("follower_id", "followee_id", "created_at")
POST_COLUMNS = (
    "id", "author_id", "prompt", "revised_prompt", "image_path", "width", "height", "seed", "backend", "model",
    "parent_id", "visibility", "like_count", "remix_count", "hot", "created_at",
)  # fmt: skip
LIKE_COLUMNS = ("post_id", "person_id", "created_at")

PLATFORM = "bench"  # the identities of the synthetic people, so that real Actors can speak for them
NAMES = ("ada", "alan", "grace", "linus", "barbara", "edsger", "margaret", "dennis", "radia", "ken", "frances", "guido")
MOODS = ("misty", "bright", "dark", "calm", "vivid", "pastel", "moody", "sunny")
SUBJECTS = ("fox", "lighthouse", "forest", "city", "ocean", "mountains", "galaxy", "river", "street", "owl")
PLACES = ("at dawn", "in the snow", "at night", "under the stars", "in the rain", "at sunset", "in autumn")

Row = tuple[object, ...]


@dataclass(frozen=True, slots=True)
class Shape:
    people: int
    follows: int
    posts: int
    likes: int
    days: int = 30

    @classmethod
    def at(cls, scale: float) -> Shape:
        """Full scale is 10,000 people, 200,000 follows, 1,000,000 posts and 2,000,000 likes."""
        people = max(20, round(10_000 * scale))
        follows = min(round(200_000 * scale), people * (people - 1) // 4)
        posts = max(200, round(1_000_000 * scale))
        likes = min(round(2_000_000 * scale), posts * people // 4)
        return cls(people, follows, posts, likes)


def handle_of(person_id: int) -> str:
    return f"{NAMES[person_id % len(NAMES)]}{person_id}"


def chat_of(person_id: int) -> str:
    return f"chat{person_id}"


def _at(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


class Network:
    """Draws the whole graph up front (a few lists of numbers); rows are made lazily, batch by batch."""

    def __init__(self, shape: Shape, now: datetime, image_path: str, seed: int = 2026) -> None:
        self.shape, self.now, self.image_path, self.seed = shape, now, image_path, seed
        self.now_ts = now.timestamp()
        self.start_ts = self.now_ts - shape.days * DAY
        rng = random.Random(seed)
        self.ids = range(1, shape.people + 1)
        order = list(self.ids)
        rng.shuffle(order)
        self.popularity = [0.0] * (shape.people + 1)  # index = person id; 0 unused
        for rank, person_id in enumerate(order, 1):
            self.popularity[person_id] = rank**-ZIPF
        self.follows = self._draw_follows(rng)
        self.follower_counts = [0] * (shape.people + 1)
        for _, followee in self.follows:
            self.follower_counts[followee] += 1
        self._draw_posts(rng)

    def _draw_follows(self, rng: random.Random) -> list[tuple[int, int]]:
        """Out-degrees are log-normal; whom to follow is drawn by popularity, without repeats."""
        raw = [rng.lognormvariate(0, 1) for _ in self.ids]
        total, cap = sum(raw), (self.shape.people - 1) // 2
        cum = list(accumulate(self.popularity[1:]))
        pairs: list[tuple[int, int]] = []
        for follower, weight in zip(self.ids, raw, strict=True):
            degree = min(cap, int(weight / total * self.shape.follows + rng.random()))
            chosen: set[int] = set()
            for _round in range(30):
                if len(chosen) >= degree:
                    break
                chosen.update(f for f in rng.choices(self.ids, cum_weights=cum, k=degree - len(chosen)))
                chosen.discard(follower)
            while len(chosen) < degree:  # a heavy follower of a tiny network: top up uniformly
                chosen.add(rng.choice([p for p in self.ids if p != follower and p not in chosen]))
            pairs.extend((follower, followee) for followee in sorted(chosen)[:degree])
        return pairs

    def _draw_posts(self, rng: random.Random) -> None:
        shape = self.shape
        self.times = sorted(rng.uniform(self.start_ts, self.now_ts) for _ in range(shape.posts))
        productivity = list(accumulate(rng.lognormvariate(0, 1) for _ in self.ids))
        self.authors = rng.choices(self.ids, cum_weights=productivity, k=shape.posts)
        self.parents: list[int | None] = [None] * shape.posts
        self.private = [rng.random() < PRIVATE_SHARE for _ in range(shape.posts)]
        self.remix_counts = [0] * shape.posts
        for index in range(1, shape.posts):
            if rng.random() < REMIX_SHARE:
                parent = rng.randrange(index)
                self.parents[index] = parent + 1
                self.remix_counts[parent] += 1
        # Likes go to well-followed authors' posts (Pareto luck on top), mostly once a post is a few hours old.
        weights = [
            0.0
            if private
            else rng.paretovariate(2.0)
            * (self.follower_counts[author] + 1) ** 0.7
            * (1 - math.exp(-(self.now_ts - created) / (6 * 3600)))
            for private, author, created in zip(self.private, self.authors, self.times, strict=True)
        ]
        self.like_counts = [0] * shape.posts
        for index in rng.choices(range(shape.posts), cum_weights=list(accumulate(weights)), k=shape.likes):
            self.like_counts[index] += 1
        self.like_counts = [min(count, shape.people) for count in self.like_counts]

    # Rows, in batches.

    def people_rows(self) -> Iterator[list[Row]]:
        rng = random.Random(self.seed + 1)
        rows: list[Row] = []
        for person_id in self.ids:
            name = NAMES[person_id % len(NAMES)].title()
            joined = _at(self.start_ts - rng.uniform(0, 60 * DAY))
            rows.append((person_id, handle_of(person_id), f"{name} {person_id}", "", joined))
        yield from _batched(rows)

    def identity_rows(self) -> Iterator[list[Row]]:
        rows: list[Row] = [
            (pid, pid, PLATFORM, str(pid), chat_of(pid), handle_of(pid), False, self.now) for pid in self.ids
        ]  # fmt: skip
        yield from _batched(rows)

    def follow_rows(self) -> Iterator[list[Row]]:
        rng = random.Random(self.seed + 2)
        for lo in range(0, len(self.follows), BATCH):
            chunk = self.follows[lo : lo + BATCH]
            yield [(a, b, _at(rng.uniform(self.start_ts, self.now_ts))) for a, b in chunk]

    def post_rows(self) -> Iterator[list[Row]]:
        rng = random.Random(self.seed + 3)
        for lo in range(0, self.shape.posts, BATCH):
            batch: list[Row] = []
            for index in range(lo, min(lo + BATCH, self.shape.posts)):
                created = _at(self.times[index])
                likes = self.like_counts[index]
                prompt = f"a {rng.choice(MOODS)} {rng.choice(SUBJECTS)} {rng.choice(PLACES)}"
                batch.append(
                    (
                        index + 1, self.authors[index], prompt, None, self.image_path, 1024, 1024,
                        rng.getrandbits(31), "local", "offline-art-1", self.parents[index],
                        "private" if self.private[index] else "public", likes, self.remix_counts[index],
                        hot_score(likes, created), created,
                    )
                )  # fmt: skip
            yield batch

    def like_rows(self) -> Iterator[list[Row]]:
        """Each post gets exactly `like_count` likes from distinct people, given after it was posted."""
        rng = random.Random(self.seed + 4)
        batch: list[Row] = []
        for index, count in enumerate(self.like_counts):
            if not count:
                continue
            posted = self.times[index]
            span = self.now_ts - posted
            for person_id in sorted(rng.sample(self.ids, count)):
                batch.append((index + 1, person_id, _at(posted + span * rng.random() ** 3)))
            if len(batch) >= BATCH:
                yield batch
                batch = []
        if batch:
            yield batch

    def tables(self) -> list[tuple[str, tuple[str, ...], Iterator[list[Row]]]]:
        """(table, columns, batches) in an order that satisfies the foreign keys."""
        return [
            ("people", PEOPLE_COLUMNS, self.people_rows()),
            ("identities", IDENTITY_COLUMNS, self.identity_rows()),
            ("follows", FOLLOW_COLUMNS, self.follow_rows()),
            ("posts", POST_COLUMNS, self.post_rows()),
            ("likes", LIKE_COLUMNS, self.like_rows()),
        ]


def _batched(rows: list[Row]) -> Iterator[list[Row]]:
    for lo in range(0, len(rows), BATCH):
        yield rows[lo : lo + BATCH]
