"""What a generation job looks like to the person waiting for it, and the outbox renderer that
edits their progress message as the job moves on and brings them its result, exactly once."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core import cards, outbox
from core.db import rowcount
from core.gen.jobs import queue_position
from core.gen.media import MediaStore
from core.messenger import MessageRef
from core.models import Delivery, GenerationJob, Identity, Post, utcnow
from core.outbox import Outgoing
from core.replies import Reply


def _short(prompt: str) -> str:
    return cards.shorten(prompt, 120)


async def job_reply(
    session: AsyncSession,
    job: GenerationJob,
    media: MediaStore,
    *,
    edit: bool = False,
    viewer_id: int | None = None,
    ahead: int | None = None,
) -> Reply:
    """The message for the job's current state; carries job_id while it is still in progress.
    `edit`: the reply replaces the progress message (the outbox's edits). `viewer_id`: see cards.card.
    `ahead`: the jobs queued ahead of it, when already known (jobs.Queued)."""
    if job.status == "done" and job.post_id is not None:
        post = await session.get(Post, job.post_id)
        if post is not None:
            [view] = await cards.views(session, [post])
            return cards.card(view, media, edit=edit, viewer_id=viewer_id)
        return Reply(text=f"✅ Done, but the post was deleted since: {_short(job.prompt)}", edit=edit)
    if job.status == "failed":
        return Reply(text=f"❌ {job.error or 'The image could not be made.'}\n{_short(job.prompt)}", edit=edit)
    if job.status == "running":
        retry = f" (attempt {job.attempts})" if job.attempts > 1 else ""
        return Reply(text=f"🎨 Generating{retry}…\n{_short(job.prompt)}", job_id=job.id, edit=edit)
    position = ahead + 1 if ahead is not None else await queue_position(session, job)
    waiting = " (retrying after a hiccup)" if job.attempts else ""
    text = f"⏳ Queued, number {position} in line{waiting}.\n{_short(job.prompt)}"
    return Reply(text=text, job_id=job.id, edit=edit)


async def shown_state(session: AsyncSession, job: GenerationJob) -> str:
    """What the progress message shows: the status, and for a queued job its place in line."""
    if job.status != "queued":
        return job.status
    return f"queued:{await queue_position(session, job)}"


def result_key(job: GenerationJob) -> str:
    return f"result:{job.id}"


async def deliver_results(session: AsyncSession, jobs: Sequence[GenerationJob], *, grace: timedelta) -> None:
    """Each finished job's outcome goes to the person who asked, once: into their progress message, or
    as a new message to the chat they asked from when no progress message was ever shown (the
    process died before the adapter could send it). The adapter may still be about to report one,
    so without it the row waits `grace` after the request. One statement for them all."""
    messages = [message for job in jobs if (message := _result_message(job, grace)) is not None]
    await outbox.add_many(session, messages)


def _result_message(job: GenerationJob, grace: timedelta) -> outbox.Message | None:
    platform, chat_id = job.platform, job.chat_id
    not_before: datetime | None = max(utcnow(), job.created_at + grace)
    if job.progress_ref is not None:
        ref = MessageRef.decode(job.progress_ref)
        platform, chat_id, not_before = ref.platform, ref.chat_id, None
    if platform is None or chat_id is None:
        return None  # a job from before the requester's chat was recorded, never shown: nowhere to send it
    return outbox.Message(
        key=result_key(job),
        platform=platform,
        chat_id=chat_id,
        kind="job",
        payload={"job": job.id, "result": True},
        person_id=job.person_id,
        not_before=not_before,
    )


async def progress_shown(session: AsyncSession, job: GenerationJob, ref: MessageRef) -> bool:
    """The adapter showed the job's progress as message `ref`. False when the job already has its
    message (its result went out as a new one first, or the request came twice): then `ref` is told
    where to look instead of staying behind as "Queued"."""
    taken = await session.execute(
        update(GenerationJob)
        .where(GenerationJob.id == job.id, GenerationJob.progress_ref.is_(None))
        .values(progress_ref=ref.encode(), shown_status=job.shown_status or "queued")
        .execution_options(synchronize_session=False)
    )
    await session.refresh(job)
    if rowcount(taken) == 0:
        if job.progress_ref != ref.encode():
            await _retire(session, job, ref)
        return False
    # A result waiting for this message is due now.
    await session.execute(
        update(Delivery)
        .where(Delivery.key == result_key(job), Delivery.status == "pending")
        .values(not_before=utcnow())
    )
    return True


async def _retire(session: AsyncSession, job: GenerationJob, ref: MessageRef) -> None:
    await outbox.add(
        session,
        key=f"retire:{ref.encode()}"[:160],
        platform=ref.platform,
        chat_id=ref.chat_id,
        kind="job",
        payload={"job": job.id, "retire": ref.encode()},
        person_id=job.person_id,
    )


async def _author_alone(session: AsyncSession, job: GenerationJob, platform: str, chat_id: str) -> int | None:
    """The job's author when this chat is their own one-to-one chat (where their identity says the
    network reaches them); None for a group, whose members see the result too."""
    if job.status != "done":
        return None  # no card, no follow button: spare the look-up
    own = await session.scalar(
        select(Identity.id)
        .where(Identity.person_id == job.person_id, Identity.platform == platform, Identity.chat_id == chat_id)
        .limit(1)
    )
    return job.person_id if own is not None else None


class JobProgressRenderer:
    """Delivery payload {"job": id}: edit the job's progress message to its current state. With
    "result": the job's outcome, edited in, or sent as a new message when there is no progress
    message (any more). With "retire": a second message for the job points to the one that shows it."""

    def __init__(self, media: MediaStore) -> None:
        self.media = media

    async def render(self, session: AsyncSession, delivery: Delivery, payload: dict[str, Any]) -> Outgoing | None:
        job = await session.get(GenerationJob, payload["job"])
        if job is None:
            return None
        if "retire" in payload:
            text = f"↪️ This request is shown in another message.\n{_short(job.prompt)}"
            return Outgoing(Reply(text=text, edit=True), edit=MessageRef.decode(payload["retire"]))
        result = bool(payload.get("result"))
        state = await shown_state(session, job)
        payload["rendered"] = state  # the same dict reaches sent() below
        if job.progress_ref is None:
            if not result:
                return None
            payload["new"] = True
            viewer = await _author_alone(session, job, delivery.platform, delivery.chat_id)
            return Outgoing(await job_reply(session, job, self.media, viewer_id=viewer))
        if job.shown_status == state:
            return None
        shown = MessageRef.decode(job.progress_ref)
        viewer = await _author_alone(session, job, shown.platform, shown.chat_id)
        reply = await job_reply(session, job, self.media, edit=True, viewer_id=viewer)
        return Outgoing(reply, edit=shown, or_send=result)

    async def sent(self, session: AsyncSession, delivery: Delivery, payload: dict[str, Any], ref: MessageRef) -> None:
        job = await session.get(GenerationJob, payload["job"])
        if job is None or "retire" in payload:
            return
        if payload.get("new"):
            taken = await session.execute(
                update(GenerationJob)
                .where(GenerationJob.id == job.id, GenerationJob.progress_ref.is_(None))
                .values(progress_ref=ref.encode(), shown_status=payload.get("rendered"))
                .execution_options(synchronize_session=False)
            )
            if rowcount(taken) == 1:
                return
            # The adapter reported its progress message while this one was on its way: that one goes.
            await session.refresh(job)
            if job.progress_ref is not None:
                await _retire(session, job, MessageRef.decode(job.progress_ref))
        # The job may have moved on since we rendered; the row its next status added will show that.
        job.progress_ref = ref.encode()
        job.shown_status = payload.get("rendered")
