"""The outbox: everything the core sends on its own (progress edits, gallery posts, digests,
notifications) is a `Delivery` row written before it is attempted, then sent by one paced sender
per platform.

Rows are claimed a batch at a time with a conditional UPDATE (pending -> claimed, under a fresh
claim token), so two processes never take the same row, and each row moves claimed -> sending only
when its request is about to leave the process: after the outbox's pacing and after any wait in the
messenger's own rate limiter (see core.messenger.OnWire). A row whose send may or may not have
happened (a read timeout, or a crash while it was "sending") becomes "uncertain" and is not
repeated: a visible duplicate is worse than a gap an operator can see.

A claim is a lease: the process working a batch renews it every RENEW_SECONDS, so a claim not
renewed for LEASE belongs to a dead process. Its "claimed" rows were never attempted and go back to
"pending" within seconds; its "sending" row becomes "uncertain".

Several processes may run senders on one PostgreSQL database: a platform's outbox is sent by the
one process that holds its deployment lock (core.leases, "outbox:<platform>"), so the configured
rate holds for the whole deployment; the others wait and take over within a poll when it dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from aiolimiter import AsyncLimiter
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core import sent_files
from core.db import insert_ignore_many, rowcount
from core.leases import DeploymentLock
from core.messenger import (
    CalledOff,
    DeliveryUncertain,
    MessageGone,
    MessageRef,
    Messenger,
    RetryLater,
    Unreachable,
)
from core.models import Delivery, Identity, utcnow
from core.replies import Button, Reply

log = logging.getLogger(__name__)

BATCH = 100  # rows claimed at once; a batch waits for its last answers before the next is claimed
MAX_ATTEMPTS = 5
LEASE = timedelta(seconds=6)  # a claim not renewed this long belongs to a process that died
RENEW_SECONDS = 2.0  # how often a live process renews the claim on the batch it is working
IN_FLIGHT = ("pending", "claimed", "sending")  # statuses of rows not finished yet
DEFAULT_RATE = 25.0
AHEAD = 3  # rows rendered while earlier ones wait for the limiter (for renderers that allow it)
# A send that comes a little late (the event loop was busy) may take the next slot that much early,
# up to this share of the interval; gaps stay >= 85% of 1/rate and a second holds at most rate + 2.
CATCH_UP = 0.15


@dataclass(frozen=True, slots=True)
class Outgoing:
    reply: Reply
    edit: MessageRef | None = None  # edit this message instead of sending a new one
    or_send: bool = False  # if the message to edit is gone, send the reply as a new message instead
    # Delete this message where the messenger can (it has a `delete`); elsewhere `reply` is edited into it.
    delete: MessageRef | None = None


class Renderer(Protocol):
    """Turns one kind of delivery into a message at send time, so it shows current data.

    A renderer with a true `render_ahead` attribute says its message depends on no earlier send
    (true of a digest; not of a progress edit, which edits the message the previous edit left), so
    the outbox may render it a few rows early, while earlier rows wait for the limiter."""

    async def render(self, session: AsyncSession, delivery: Delivery, payload: dict[str, Any]) -> Outgoing | None:
        """None: nothing to send any more (the post was deleted, the progress is already shown)."""
        ...

    async def sent(self, session: AsyncSession, delivery: Delivery, payload: dict[str, Any], ref: MessageRef) -> None:
        """Called in the transaction that marks the row sent."""
        ...


async def add(
    session: AsyncSession,
    *,
    key: str,
    platform: str,
    chat_id: str,
    kind: str,
    payload: dict[str, Any],
    person_id: int | None = None,
    not_before: datetime | None = None,
) -> None:
    """Queue one message (not before `not_before`, if given); a second add with the same key is ignored."""
    now = utcnow()
    # The statement built once (core.db.insert_ignore_many), the row as its parameters: every finished
    # generation job adds a row inside SQLite's one writer's turn, and building it cost more than running it.
    await session.execute(
        insert_ignore_many(session, Delivery),
        {
            "key": key,
            "platform": platform,
            "chat_id": chat_id,
            "kind": kind,
            "payload": json.dumps(payload),
            "person_id": person_id,
            "status": "pending",
            "attempts": 0,
            "not_before": not_before or now,
            "created_at": now,
        },
    )


@dataclass(frozen=True, slots=True)
class Message:
    """One row for `add_many`: the arguments of `add`."""

    key: str
    platform: str
    chat_id: str
    kind: str
    payload: dict[str, Any]
    person_id: int | None = None
    not_before: datetime | None = None


async def add_many(session: AsyncSession, messages: list[Message]) -> None:
    """Queue many messages in one statement (an executemany); keys already queued are ignored."""
    if not messages:
        return
    now = utcnow()
    rows = [
        {
            "key": m.key,
            "platform": m.platform,
            "chat_id": m.chat_id,
            "kind": m.kind,
            "payload": json.dumps(m.payload),
            "person_id": m.person_id,
            "status": "pending",
            "attempts": 0,
            "not_before": m.not_before or now,
            "created_at": now,
        }
        for m in messages
    ]
    # One row as one statement: an executemany always goes to the SQLite driver's thread (core.sqlite_inline).
    await session.execute(insert_ignore_many(session, Delivery), rows[0] if len(rows) == 1 else rows)


@dataclass(frozen=True, slots=True)
class _Rendered:
    payload: dict[str, Any]
    renderer: Renderer | None
    outgoing: Outgoing | None
    error: Exception | None = None  # rendering failed: the row is retried later, like a failed send


@dataclass
class _Sender:
    messenger: Messenger
    limiter: AsyncLimiter
    # Sends waiting for their answer at once: the pace must not depend on the platform's latency.
    slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(1))
    paused_until: float = 0.0  # loop time; after a 429 nobody on this platform sends before it
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    lock: DeploymentLock | None = None  # this platform's sender for the deployment; None: always ours

    def pause_left(self) -> float:
        return max(0.0, self.paused_until - asyncio.get_running_loop().time())


class Outbox:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], poll_seconds: float = 1.0) -> None:
        self.sessions = sessions
        self.poll_seconds = poll_seconds
        self.renderers: dict[str, Renderer] = {}
        self._senders: dict[str, _Sender] = {}
        self._stopping = False
        self._stopped = asyncio.Event()
        self._started = False
        self._recovered_at = 0.0  # loop time of the last look for rows a dead process left behind
        self.on_unreachable: Callable[[str, str], Awaitable[None]] | None = None

    def add_renderer(self, kind: str, renderer: Renderer) -> None:
        self.renderers[kind] = renderer

    def register(self, messenger: Messenger) -> None:
        rate = float(getattr(messenger, "rate_per_second", DEFAULT_RATE))
        # One message per 1/rate seconds, never a burst: platforms count in sliding windows. A bucket of
        # exactly 1 would lose every late arrival for good, and arrivals are often a millisecond late.
        in_flight = max(1, int(getattr(messenger, "max_in_flight", 1)))
        sender = _Sender(messenger, AsyncLimiter(1 + CATCH_UP, (1 + CATCH_UP) / rate), asyncio.Semaphore(in_flight))
        bind = self.sessions.kw.get("bind")
        if bind is not None:
            sender.lock = DeploymentLock(bind, f"outbox:{messenger.platform}")
        self._senders[messenger.platform] = sender
        if not self._stopping and self._started:
            sender.task = asyncio.create_task(self._run(sender), name=f"outbox-{messenger.platform}")

    async def start(self) -> None:
        await self._recover_stale()
        self._started = True
        for sender in self._senders.values():
            if sender.task is None:
                sender.task = asyncio.create_task(self._run(sender), name=f"outbox-{sender.messenger.platform}")

    async def stop(self, grace: float = 5.0) -> None:
        self._stopping = True
        self._stopped.set()
        tasks = [s.task for s in self._senders.values() if s.task is not None]
        for sender in self._senders.values():
            sender.wake.set()
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=grace)
            for task in pending:
                task.cancel()
            for task in pending:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self.release_locks()

    async def release_locks(self) -> None:
        """Let another process send these platforms' outboxes (what a process's death does too)."""
        for sender in self._senders.values():
            if sender.lock is not None:
                await sender.lock.release()

    def leads(self) -> list[str]:
        """The platforms whose outbox this process sends now."""
        return [name for name, s in self._senders.items() if s.task is not None and s.lock is not None and s.lock.held]

    async def _our_turn(self, sender: _Sender) -> bool:
        if sender.lock is None:
            return True
        try:
            return await sender.lock.ensure()
        except Exception:
            log.exception("could not take the %s sender lock", sender.messenger.platform)
            return False

    def wake(self, platform: str | None = None) -> None:
        for name, sender in self._senders.items():
            if platform is None or name == platform:
                sender.wake.set()

    async def _recover_stale(self) -> None:
        """Rows a dead process left behind (its claim was not renewed for LEASE): those it had
        claimed but not attempted are sent again; the one it was sending may have arrived, so it is
        marked uncertain, not repeated. Runs at start and every LEASE / 2 while sending or idle, since
        the dead process may not be restarted."""
        self._recovered_at = asyncio.get_running_loop().time()
        stale = utcnow() - LEASE
        async with self.sessions() as session:
            await session.execute(
                update(Delivery)
                .where(Delivery.status == "claimed", Delivery.claimed_at < stale)
                .values(status="pending", claim=None, attempts=Delivery.attempts - 1)
            )
            await session.execute(
                update(Delivery)
                .where(Delivery.status == "sending", Delivery.claimed_at < stale)
                .values(status="uncertain", error="interrupted while sending")
            )
            await session.commit()

    async def _recover_now_and_then(self) -> None:
        if asyncio.get_running_loop().time() - self._recovered_at < LEASE.total_seconds() / 2:
            return
        try:
            await self._recover_stale()
        except Exception:
            log.exception("outbox recovery failed")

    async def _claim(self, platform: str) -> list[Delivery]:
        now = utcnow()
        claim = uuid.uuid4().hex[:16]
        async with self.sessions() as session:
            due = (
                select(Delivery.id)
                .where(Delivery.platform == platform, Delivery.status == "pending", Delivery.not_before <= now)
                .order_by(Delivery.id)
                .limit(BATCH)
            )
            rows = await session.scalars(
                update(Delivery)
                .where(Delivery.id.in_(due.scalar_subquery()), Delivery.status == "pending")
                .values(status="claimed", claim=claim, claimed_at=now, attempts=Delivery.attempts + 1)
                .returning(Delivery)
                .execution_options(synchronize_session=False)
            )
            claimed = sorted(rows.all(), key=lambda d: d.id)
            await session.commit()
            return claimed

    async def _run(self, sender: _Sender) -> None:
        platform = sender.messenger.platform
        while not self._stopping:
            sender.wake.clear()  # before looking, so a wake-up during the look is not lost
            if not await self._our_turn(sender):  # another process sends this platform's outbox
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopped.wait(), self.poll_seconds)
                continue
            try:
                batch = await self._claim(platform)
            except Exception:
                log.exception("outbox claim failed for %s", platform)
                batch = []
            await self._recover_now_and_then()
            if not batch:
                if self._stopping:  # stop() may have set the event while we were claiming
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(sender.wake.wait(), self.poll_seconds)
                continue
            pause = await self._send_batch_renewing(sender, batch)
            if pause:
                await asyncio.sleep(pause)

    async def _send_batch_renewing(self, sender: _Sender, batch: list[Delivery]) -> float:
        """Send the batch while renewing its claim, so no other process takes it over."""
        done = asyncio.Event()
        renewing = asyncio.create_task(self._renew(batch[0].claim, done))
        try:
            return await self._send_batch(sender, batch)
        finally:
            done.set()
            await asyncio.wait([renewing])  # not cancelled: a cancel could cut a commit short

    async def _renew(self, claim: str | None, done: asyncio.Event) -> None:
        while not done.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), RENEW_SECONDS)
            if done.is_set():
                return
            try:
                async with self.sessions() as session:
                    await session.execute(
                        update(Delivery)
                        .where(Delivery.claim == claim, Delivery.status.in_(("claimed", "sending")))
                        .values(claimed_at=utcnow())
                    )
                    await session.commit()
            except Exception:  # the sends go on; a lapsed claim costs at most a row sent by another process
                log.exception("could not renew an outbox claim")

    async def _send_batch(self, sender: _Sender, batch: list[Delivery]) -> float:
        """Send claimed rows in order; returns seconds to pause after a 429, else 0.

        Up to the messenger's `max_in_flight` sends wait for their answers at once (rows to the same
        chat never overlap, so a chat sees its messages in order). Rows that may be rendered ahead
        are, one at a time and up to AHEAD rows early, so a slow picture (a digest's new collage) is
        made while earlier rows wait for the limiter instead of delaying a send."""
        early: dict[int, asyncio.Task[_Rendered]] = {}
        tail: asyncio.Task[_Rendered] | None = None
        sending: dict[str, asyncio.Task[None]] = {}  # the latest send per chat
        launched: list[asyncio.Task[None]] = []
        try:
            for index, delivery in enumerate(batch):
                task = early.pop(delivery.id, None)
                previous = sending.get(delivery.chat_id)
                if previous is not None:
                    # The earlier send to this chat may change what this row shows (a blocked person,
                    # an edited message): render it once that send is over.
                    await asyncio.wait([previous] + ([task] if task is not None else []))
                    task = None
                rendered = await task if task is not None else await self._render(delivery)
                for later in batch[index + 1 : index + 1 + AHEAD]:
                    if later.id not in early and getattr(self.renderers.get(later.kind), "render_ahead", False):
                        tail = early[later.id] = asyncio.create_task(self._render_after(tail, later))
                await sender.slots.acquire()
                cut_off = any(send.cancelled() for send in launched)
                if self._stopping or sender.pause_left() or cut_off:
                    sender.slots.release()
                    await self._release(batch[index:])
                    break
                send = asyncio.create_task(self._deliver(sender, delivery, rendered))
                send.add_done_callback(lambda _done: sender.slots.release())
                sending[delivery.chat_id] = send
                launched.append(send)
        finally:
            # Renders for rows given back are let finish (a cancel could cut a query short) and dropped.
            await asyncio.gather(*early.values(), return_exceptions=True)
            outcomes = await asyncio.gather(*launched, return_exceptions=True)
            for outcome in outcomes:
                if isinstance(outcome, Exception):
                    log.error("outbox send failed on %s", sender.messenger.platform, exc_info=outcome)
        if any(isinstance(outcome, asyncio.CancelledError) for outcome in outcomes):
            raise asyncio.CancelledError  # a send was cut off: so is this sender, as it was before sends overlapped
        return sender.pause_left()

    async def _release(self, rows: list[Delivery]) -> None:
        """Give back claimed rows that were not attempted."""
        if not rows:
            return
        async with self.sessions() as session:
            await session.execute(
                update(Delivery)
                .where(Delivery.id.in_([r.id for r in rows]), Delivery.status == "claimed")
                .values(status="pending", claim=None, attempts=Delivery.attempts - 1)
            )
            await session.commit()

    async def _render(self, delivery: Delivery) -> _Rendered:
        payload: dict[str, Any] = {}
        renderer = self.renderers.get(delivery.kind)
        try:
            payload = json.loads(delivery.payload)
            async with self.sessions() as session:
                outgoing = await renderer.render(session, delivery, payload) if renderer else None
        except Exception as exc:  # one broken row (a picture gone from disk) must not stop the sender
            return _Rendered(payload, renderer, None, error=exc)
        return _Rendered(payload, renderer, outgoing)

    async def _render_after(self, previous: asyncio.Task[_Rendered] | None, delivery: Delivery) -> _Rendered:
        """Early renders run one after another: side by side they would slow each other and the sends."""
        if previous is not None:
            await asyncio.wait([previous])
        return await self._render(delivery)

    async def _deliver(self, sender: _Sender, delivery: Delivery, rendered: _Rendered) -> None:
        """Send one rendered row and record the outcome; a 429 pauses the whole platform."""
        payload, renderer, outgoing = rendered.payload, rendered.renderer, rendered.outgoing
        if rendered.error is not None:
            await self._failed(delivery, rendered.error)
            return
        if outgoing is None:
            await self._finish(delivery, "skipped", error="nothing to send")
            return
        await sender.limiter.acquire()
        if wait := sender.pause_left():  # a 429 came back while this send waited for its slot
            await asyncio.sleep(wait)
        try:
            ref = await self._transmit(sender.messenger, delivery, outgoing)
        except CalledOff:
            return  # our claim lapsed and another sender took the row meanwhile
        except MessageGone as exc:
            await self._finish(delivery, "skipped", error=f"message gone: {exc}")
            return
        except RetryLater as exc:
            loop_now = asyncio.get_running_loop().time()
            sender.paused_until = max(sender.paused_until, loop_now + exc.retry_after)
            await self._retry(delivery, exc.retry_after, str(exc), count_attempt=False)
            return
        except Unreachable as exc:
            await self._finish(delivery, "skipped", error=f"unreachable: {exc}")
            if self.on_unreachable is not None:
                await self.on_unreachable(delivery.platform, delivery.chat_id)
            return
        except DeliveryUncertain as exc:
            await self._finish(delivery, "uncertain", error=str(exc) or "no answer")
            return
        except Exception as exc:
            await self._failed(delivery, exc)
            return
        async with self.sessions() as session:
            if renderer is not None:
                await renderer.sent(session, delivery, payload, ref)
            if outgoing.reply.post_id is not None:
                await sent_files.record(session, ref.platform, ref.files, outgoing.reply.post_id)
            await self._mark(session, delivery, "sent", sent_ref=ref.encode())
            await session.commit()

    async def _transmit(self, messenger: Messenger, delivery: Delivery, outgoing: Outgoing) -> MessageRef:
        """The row turns "sending" just before its request leaves: inside the messenger, after its
        own rate limiter, when the messenger can tell; else right before the call."""
        on_wire = _Once(lambda: self._start_sending(delivery))
        hooked = bool(getattr(messenger, "calls_on_wire", False))
        if not hooked and not await on_wire():
            raise CalledOff("the claim lapsed")
        extra: dict[str, Any] = {"on_wire": on_wire} if hooked else {}
        if outgoing.delete is not None:
            deleter = getattr(messenger, "delete", None)
            if deleter is None:
                return await messenger.edit(outgoing.delete, outgoing.reply, **extra)
            if hooked and not await on_wire():  # delete() takes no on_wire: the row turns sending here
                raise CalledOff("the claim lapsed")
            await deleter(outgoing.delete)
            return outgoing.delete
        if outgoing.edit is None:
            return await messenger.send(delivery.chat_id, outgoing.reply, **extra)
        try:
            return await messenger.edit(outgoing.edit, outgoing.reply, **extra)
        except MessageGone:
            if not outgoing.or_send:
                raise
            log.info("delivery %s: the message to edit is gone; sending a new one", delivery.key)
            return await messenger.send(delivery.chat_id, outgoing.reply, **extra)

    async def _failed(self, delivery: Delivery, exc: Exception) -> None:
        """Nothing went out: try again after a backoff, up to MAX_ATTEMPTS."""
        log.error("delivery %s failed", delivery.key, exc_info=exc)
        if delivery.attempts >= MAX_ATTEMPTS:
            await self._finish(delivery, "failed", error=repr(exc)[:500])
        else:
            backoff = min(300.0, 2.0**delivery.attempts) * random.uniform(0.8, 1.2)
            await self._retry(delivery, backoff, repr(exc)[:500], count_attempt=True)

    async def _start_sending(self, delivery: Delivery) -> bool:
        """claimed -> sending, committed right before the request leaves: from here a crash leaves
        the outcome unknown. Only while the claim is still ours."""
        async with self.sessions() as session:
            result = await session.execute(
                update(Delivery)
                .where(Delivery.id == delivery.id, Delivery.status == "claimed", Delivery.claim == delivery.claim)
                .values(status="sending", claimed_at=utcnow())
            )
            await session.commit()
        return rowcount(result) == 1

    async def _finish(self, delivery: Delivery, status: str, *, error: str | None = None) -> None:
        async with self.sessions() as session:
            await self._mark(session, delivery, status, error=error)
            await session.commit()

    @staticmethod
    async def _mark(session: AsyncSession, delivery: Delivery, status: str, **values: Any) -> None:
        await session.execute(
            update(Delivery).where(Delivery.id == delivery.id).values(status=status, sent_at=utcnow(), **values)
        )

    async def _retry(self, delivery: Delivery, delay: float, error: str, *, count_attempt: bool) -> None:
        async with self.sessions() as session:
            await session.execute(
                update(Delivery)
                .where(Delivery.id == delivery.id)
                .values(
                    status="pending",
                    claim=None,
                    not_before=utcnow() + timedelta(seconds=delay),
                    error=error,
                    attempts=Delivery.attempts if count_attempt else Delivery.attempts - 1,
                )
            )
            await session.commit()

    async def idle(self) -> bool:
        """No row is waiting for a platform that has a sender."""
        platforms = list(self._senders)
        if not platforms:
            return True
        async with self.sessions() as session:
            busy = await session.scalar(
                select(Delivery.id).where(Delivery.platform.in_(platforms), Delivery.status.in_(IN_FLIGHT)).limit(1)
            )
        return busy is None


class _Once:
    """The outbox's on_wire hook: the row turns "sending" at the first request of a send only."""

    def __init__(self, start: Callable[[], Awaitable[bool]]) -> None:
        self._start = start
        self._result: bool | None = None

    async def __call__(self) -> bool:
        if self._result is None:
            self._result = await self._start()
        return self._result


async def mark_unreachable(session: AsyncSession, platform: str, chat_id: str) -> None:
    await session.execute(
        update(Identity).where(Identity.platform == platform, Identity.chat_id == chat_id).values(unreachable=True)
    )


class TextRenderer:
    """Delivery payload {"text": ..., "buttons": [[[label, action], ...], ...]}: a plain message,
    dropped if the person has since blocked the bot."""

    async def render(self, session: AsyncSession, delivery: Delivery, payload: dict[str, Any]) -> Outgoing | None:
        if delivery.person_id is not None and not await reachable(session, delivery.platform, delivery.chat_id):
            return None
        buttons = tuple(tuple(Button(label, action) for label, action in row) for row in payload.get("buttons", []))
        return Outgoing(Reply(text=payload["text"], buttons=buttons))

    async def sent(self, session: AsyncSession, delivery: Delivery, payload: dict[str, Any], ref: MessageRef) -> None:
        return None


async def reachable(session: AsyncSession, platform: str, chat_id: str) -> bool:
    """False once the person behind this chat blocked the bot (until they write again)."""
    unreachable = await session.scalar(
        select(Identity.unreachable).where(Identity.platform == platform, Identity.chat_id == chat_id).limit(1)
    )
    return not unreachable
