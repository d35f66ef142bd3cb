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
    # Whether chat_id is a one-to-one chat with this person. Only such a chat is where the network may
    # write to them first (digests, notifications); a group or a channel is not theirs.
    private: bool = True

    @property
    def platform_id(self) -> str:
        return f"{self.platform}:{self.user_id}"

    @property
    def own_chat(self) -> str | None:
        return self.chat_id if self.private else None
