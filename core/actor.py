"""Who is speaking: a platform-neutral description handed in by each adapter."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Actor:
    platform: str  # "telegram", "discord", "console"
    user_id: str
    chat_id: str | None = None
    username: str | None = None
    display_name: str | None = None

    @property
    def platform_id(self) -> str:
        return f"{self.platform}:{self.user_id}"
