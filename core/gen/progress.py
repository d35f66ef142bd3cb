"""What a generation job looks like to the person waiting for it, and the outbox renderer that
edits their progress message as the job moves on."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from core import cards
from core.gen.jobs import queue_position
from core.gen.media import MediaStore
from core.messenger import MessageRef
from core.models import Delivery, GenerationJob, Post
from core.outbox import Outgoing
from core.replies import Reply


def _short(prompt: str) -> str:
    return cards.shorten(prompt, 120)


async def job_reply(session: AsyncSession, job: GenerationJob, media: MediaStore, *, edit: bool = False) -> Reply:
    """The message for the job's current state; carries job_id while it is still in progress.
    `edit`: the reply replaces the progress message (the outbox's edits)."""
    if job.status == "done" and job.post_id is not None:
        post = await session.get(Post, job.post_id)
        if post is not None:
            [view] = await cards.views(session, [post])
            return cards.card(view, media, edit=edit)
        return Reply(text=f"✅ Done, but the post was deleted since: {_short(job.prompt)}", edit=edit)
    if job.status == "failed":
        return Reply(text=f"❌ {job.error or 'The image could not be made.'}\n{_short(job.prompt)}", edit=edit)
    if job.status == "running":
        retry = f" (attempt {job.attempts})" if job.attempts > 1 else ""
        return Reply(text=f"🎨 Generating{retry}…\n{_short(job.prompt)}", job_id=job.id, edit=edit)
    position = await queue_position(session, job)
    waiting = " (retrying after a hiccup)" if job.attempts else ""
    text = f"⏳ Queued, number {position} in line{waiting}.\n{_short(job.prompt)}"
    return Reply(text=text, job_id=job.id, edit=edit)


async def shown_state(session: AsyncSession, job: GenerationJob) -> str:
    """What the progress message shows: the status, and for a queued job its place in line."""
    if job.status != "queued":
        return job.status
    return f"queued:{await queue_position(session, job)}"


class JobProgressRenderer:
    """Delivery payload {"job": id}: edit the job's progress message to its current state."""

    def __init__(self, media: MediaStore) -> None:
        self.media = media

    async def render(self, session: AsyncSession, delivery: Delivery, payload: dict[str, Any]) -> Outgoing | None:
        job = await session.get(GenerationJob, payload["job"])
        if job is None or job.progress_ref is None:
            return None
        state = await shown_state(session, job)
        if job.shown_status == state:
            return None
        reply = await job_reply(session, job, self.media, edit=True)
        payload["rendered"] = state  # the same dict reaches sent() below
        return Outgoing(reply, edit=MessageRef.decode(job.progress_ref))

    async def sent(self, session: AsyncSession, delivery: Delivery, payload: dict[str, Any], ref: MessageRef) -> None:
        job = await session.get(GenerationJob, payload["job"])
        if job is not None:
            # The job may have moved on since we rendered; the row its next status added will show that.
            job.progress_ref = ref.encode()
            job.shown_status = payload.get("rendered")
