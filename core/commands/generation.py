"""Turning an image request into a queued generation job, and /quota."""

from __future__ import annotations

import math
import uuid
from datetime import timedelta

from sqlalchemy import select

from core import audit
from core.commands.registry import Context, command
from core.errors import UserError
from core.gen import jobs
from core.gen.breaker import BreakerState
from core.gen.progress import job_reply
from core.models import ModerationRefusal, Person, Post, utcnow
from core.prompts import ImagineOptions
from core.replies import Reply


def _idempotency_key(ctx: Context) -> str:
    if ctx.request_id:
        return f"{ctx.actor.platform}:{ctx.actor.chat_id}:{ctx.request_id}"
    return f"once:{uuid.uuid4().hex}"


async def _refuse_if_paused(ctx: Context) -> None:
    breaker = ctx.core.breaker
    if breaker.state is BreakerState.OPEN:
        wait = max(1, math.ceil(breaker.reopens_in or 0))
        raise UserError(
            f"The image service is failing right now, so new images are paused for about {wait} s. "
            "Nothing was taken from your quota; please try again then."
        )


async def _moderate(ctx: Context, prompt: str) -> None:
    """Refused prompts are kept for admins (in a transaction of their own: the request itself is dropped)."""
    verdict = await ctx.core.moderator.check(prompt)
    if verdict.allowed:
        return
    async with ctx.core.sessions() as session:
        session.add(
            ModerationRefusal(
                person_id=ctx.person.id, prompt=prompt, reason=verdict.reason[:255], source=verdict.source
            )
        )
        # The audit trail names the refusal too (the prompt itself stays in moderation_refusals).
        await audit.record(
            session, actor_id=None, action="refused prompt", person_id=ctx.person.id, reason=verdict.reason
        )
        await session.commit()
    raise UserError(verdict.reason)


async def request_image(
    ctx: Context, options: ImagineOptions, parent: Post | None = None, *, upload: str | None = None
) -> list[Reply]:
    """Check and queue the request; the reply is a progress message the adapter keeps up to date.
    A remix starts from its parent's picture, an `upload` (a media path) from the person's own."""
    settings = ctx.core.settings
    await _refuse_if_paused(ctx)
    await _moderate(ctx, options.prompt)
    queued = await jobs.enqueue(
        ctx.session,
        ctx.person,
        jobs.JobRequest(
            prompt=options.prompt,
            seed=options.seed_or_random(),
            aspect=options.aspect,
            visibility="private" if options.private else "public",
            parent_id=parent.id if parent else None,
            platform=ctx.actor.platform,
            chat_id=ctx.actor.chat_id,
            source_path=upload or (parent.image_path if parent else None),
            source_kind="upload" if upload else ("parent" if parent else None),
        ),
        _idempotency_key(ctx),
        quota=None if ctx.is_admin else settings.daily_quota,
        cooldown=0 if ctx.is_admin else settings.cooldown_seconds,
        zone=ctx.person.timezone or settings.default_timezone,
    )

    async def wake_workers() -> None:
        ctx.core.queue.wake()

    ctx.after_commit.append(wake_workers)
    return [await job_reply(ctx.session, queued.job, ctx.core.media, viewer_id=ctx.viewer_id, ahead=queued.ahead)]


def _until(delta: timedelta) -> str:
    minutes = max(1, int(delta.total_seconds() // 60))
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"


@command("quota", "how many images you can still make today")
async def quota(ctx: Context) -> list[Reply]:
    settings = ctx.core.settings
    limit = None if ctx.is_admin else settings.daily_quota
    # A person's quota day is their own local day, in the zone their digest uses (/digest HH:MM zone).
    zone = ctx.person.timezone or settings.default_timezone
    status = await jobs.quota_status(ctx.session, ctx.person.id, limit, zone)
    if status.limit is None:
        return [Reply(text=f"You are an admin: no daily limit. {status.used} images today.")]
    lines = [
        f"You have made {status.used} of {status.limit} images today; {status.left} left.",
        f"The count resets at midnight, {zone} time (in {_until(status.resets_at - utcnow())}); "
        "set your time zone with /digest HH:MM <zone>.",
    ]
    if settings.cooldown_seconds:
        lines.append(f"Between two images, wait {settings.cooldown_seconds:g} s.")
    lines.append("Images that fail don't count.")
    return [Reply(text="\n".join(lines))]


@command("refusals", "admins: the latest prompts moderation refused", hidden=True)
async def refusals(ctx: Context) -> list[Reply]:
    if not ctx.is_admin:
        raise UserError("Only admins can see refused prompts.")
    rows = (
        await ctx.session.execute(
            select(ModerationRefusal, Person.handle)
            .join(Person, Person.id == ModerationRefusal.person_id)
            .order_by(ModerationRefusal.id.desc())
            .limit(20)
        )
    ).all()
    if not rows:
        return [Reply(text="No refused prompts.")]
    lines = [
        f"{r.created_at:%Y-%m-%d %H:%M} UTC @{handle} ({r.source}): {r.reason} — “{r.prompt[:80]}”"
        for r, handle in rows
    ]
    return [Reply(text="Refused prompts, newest first:\n" + "\n".join(lines))]
