"""Small helpers for driving the core the way an adapter does."""

from __future__ import annotations

from dataclasses import dataclass

from core.actor import Actor
from core.app import Core
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

    async def post(self, who: str, prompt: str = "a red fox in the snow") -> int:
        """Create a post and return its id."""
        replies = await self.say(who, f"/imagine {prompt}")
        ids = [r.post_id for r in replies if r.post_id is not None]
        assert ids, [r.text for r in replies]
        return ids[0]
