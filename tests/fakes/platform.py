"""A fake platform for the outbox, and helpers that write a small network straight into the database.

`FakeMessenger` implements core.messenger.Messenger: it keeps every message it was handed, can be
scripted to fail for one chat (Unreachable, RetryLater, DeliveryUncertain, anything), and can
"crash" the process after N sends (raise CancelledError, so nothing after the send runs: the row
stays as a crash would leave it).
"""

from __future__ import annotations

import asyncio
import io
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from PIL import Image
from sqlalchemy import select, update

from core.app import Core
from core.feed.ranking import hot_score
from core.messenger import MessageRef
from core.models import Delivery, Identity, Person, Post
from core.replies import Reply


@dataclass(frozen=True, slots=True)
class Sent:
    chat_id: str
    reply: Reply
    at: float  # time.monotonic() when the platform accepted it


@dataclass
class FakeMessenger:
    platform: str = "console"
    rate_per_second: float = 1000.0
    sent: list[Sent] = field(default_factory=list)
    attempts: list[tuple[str, float]] = field(default_factory=list)  # every call to send: (chat id, when)
    # Exceptions raised, in order, by sends to a chat (before anything is delivered).
    failures: dict[str, list[BaseException]] = field(default_factory=dict)
    crash_after: int | None = None  # after this many sends, the next accepted send "kills the process"
    delay: float = 0.0  # seconds each send takes
    max_in_flight: int = 1  # sends the outbox may have waiting for an answer at once
    edits: list[tuple[MessageRef, Reply]] = field(default_factory=list)
    _next: int = 100

    async def send(self, chat_id: str, reply: Reply) -> MessageRef:
        self.attempts.append((chat_id, time.monotonic()))
        if self.delay:
            await asyncio.sleep(self.delay)
        queued = self.failures.get(chat_id)
        if queued:
            raise queued.pop(0)
        self._next += 1
        self.sent.append(Sent(chat_id, reply, time.monotonic()))
        if self.crash_after is not None and len(self.sent) >= self.crash_after:
            self.crash_after = None
            # The platform has the message, but the process dies before it can write that down.
            raise asyncio.CancelledError("simulated crash")
        return MessageRef(self.platform, chat_id, str(self._next))

    async def edit(self, ref: MessageRef, reply: Reply) -> MessageRef:
        self.edits.append((ref, reply))
        return ref

    def to(self, chat_id: str) -> list[Reply]:
        return [s.reply for s in self.sent if s.chat_id == chat_id]

    def counts(self) -> Counter[str]:
        return Counter(s.chat_id for s in self.sent)


def chat_of(handle: str) -> str:
    """The chat id tests.support.actor gives a person."""
    return f"chat-{handle}"


def solid_png(colour: tuple[int, int, int], size: int = 64) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(out, format="PNG")
    return out.getvalue()


async def person_id(core: Core, handle: str) -> int:
    async with core.sessions() as session:
        found = await session.scalar(select(Person.id).where(Person.handle == handle))
    assert found is not None, handle
    return found


async def add_post(
    core: Core,
    author: str,
    created_at: datetime,
    *,
    likes: int = 0,
    visibility: str = "public",
    colour: tuple[int, int, int] = (200, 40, 40),
    prompt: str | None = None,
) -> int:
    """A post written directly, with `likes` counted and the hot score the ranking would give it."""
    path = await core.media.save(solid_png(colour), "png")
    async with core.sessions() as session:
        author_id = await session.scalar(select(Person.id).where(Person.handle == author))
        assert author_id is not None, author
        post = Post(
            author_id=author_id,
            prompt=prompt or f"{author}'s picture",
            image_path=path,
            width=64,
            height=64,
            seed=1,
            backend="test",
            model="test",
            visibility=visibility,
            like_count=likes,
            remix_count=0,
            hot=hot_score(likes, created_at),
            created_at=created_at,
        )
        session.add(post)
        await session.commit()
        return post.id


async def set_person(core: Core, handle: str, **values: object) -> None:
    async with core.sessions() as session:
        await session.execute(update(Person).where(Person.handle == handle).values(**values))
        await session.commit()


async def deliveries(core: Core, kind: str | None = None) -> list[Delivery]:
    async with core.sessions() as session:
        query = select(Delivery).order_by(Delivery.id)
        if kind is not None:
            query = query.where(Delivery.kind == kind)
        return list(await session.scalars(query))


async def identity(core: Core, handle: str, platform: str = "console") -> Identity:
    async with core.sessions() as session:
        found = await session.scalar(
            select(Identity)
            .join(Person, Person.id == Identity.person_id)
            .where(Person.handle == handle, Identity.platform == platform)
        )
    assert found is not None, (handle, platform)
    return found
