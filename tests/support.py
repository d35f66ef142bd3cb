"""Small helpers for driving the core the way an adapter does."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from core.actor import Actor
from core.app import Core
from core.models import GenerationJob
from core.replies import Reply


def actor(name: str, platform: str = "console") -> Actor:
    return Actor(platform, name, chat_id=f"chat-{name}", username=name, display_name=name.title())


@dataclass
class Chat:
    """Several people talking to one core."""

    core: Core

    async def say(self, who: str, line: str, platform: str = "console") -> list[Reply]:
        return await self.core.handle(actor(who, platform), line)

    async def press(self, who: str, action: str) -> list[Reply]:
        return await self.core.press(actor(who), action)

    async def text(self, who: str, line: str) -> str:
        return "\n".join(r.text for r in await self.say(who, line))

    async def finish(self, replies: list[Reply]) -> GenerationJob:
        """Wait for the generation job a reply started, and return it finished."""
        jobs = [r.job_id for r in replies if r.job_id is not None]
        assert jobs, [r.text for r in replies]
        async with asyncio.timeout(30):
            return await self.core.queue.wait_for(jobs[0])

    async def post(self, who: str, prompt: str = "a red fox in the snow") -> int:
        """Create a post through /imagine and the generation queue, and return its id."""
        job = await self.finish(await self.say(who, f"/imagine {prompt}"))
        assert job.status == "done" and job.post_id is not None, job.error
        return job.post_id
