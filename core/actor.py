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
    # A one-to-one chat the platform lets the network open with this person from anywhere (a Discord
    # DM): where digests and notifications reach them when chat_id is not theirs.
    direct_chat: str | None = None

    @property
    def platform_id(self) -> str:
        return f"{self.platform}:{self.user_id}"

    @property
    def own_chat(self) -> str | None:
        return self.chat_id if self.private else self.direct_chat
