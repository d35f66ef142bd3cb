"""Who is an admin, named so that nobody else can become one.

An ADMINS entry is one of:
- `telegram:12345` (a platform id): that account, on that platform. Always safe.
- `boss=telegram:12345`: the same, and the handle @boss is kept for that account.
- `boss` (a handle alone): an admin only in the console chat, where whoever sits at the terminal is
  the operator anyway. On a messenger anyone could have picked that name first.

Every handle named here is reserved: a handle derived from a platform name never takes it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

CONSOLE = "console"
PLATFORM_ID_RE = {"telegram": re.compile(r"^[0-9]{1,20}$"), "discord": re.compile(r"^[0-9]{1,20}$")}
HANDLE_RE = re.compile(r"^[a-z0-9_]{3,20}$")
# Handles that read as the network speaking; nobody gets them by picking a platform name.
BUILT_IN_RESERVED = frozenset({"admin", "admins", "administrator", "root", "system", "moderator", "support"})


@dataclass(frozen=True, slots=True)
class Admins:
    platform_ids: frozenset[str] = frozenset()
    console_handles: frozenset[str] = frozenset()
    # handle -> the platform id it is kept for
    bound: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, entries: tuple[str, ...]) -> Admins:
        """ValueError, with a plain message naming the entry, for one that is neither form."""
        ids: set[str] = set()
        console: set[str] = set()
        bound: dict[str, str] = {}
        for entry in entries:
            handle, sep, pid = entry.partition("=")
            if sep:
                name, platform_id = _handle(handle), _platform_id(pid)
                if name in bound or name in console:
                    raise ValueError(f"{entry!r}: @{name} is named twice")
                bound[name] = platform_id
                ids.add(platform_id)
            elif ":" in entry:
                ids.add(_platform_id(entry))
            else:
                name = _handle(entry)
                if name in bound:
                    raise ValueError(f"{entry!r}: @{name} is named twice")
                console.add(name)
        return cls(frozenset(ids), frozenset(console), bound)

    def is_admin(self, platform_id: str, handle: str) -> bool:
        platform, _, user = platform_id.lower().partition(":")
        if platform == CONSOLE:
            # The console's user id is the name typed at the terminal: `/as boss` is boss even if a
            # messenger account took @boss before it was named here.
            return bool({user, handle} & self.console_handles)
        return platform_id.lower() in self.platform_ids

    def may_take(self, handle: str, platform_id: str) -> bool:
        """Whether a new person coming from `platform_id` may be given `handle`."""
        if handle in self.bound:
            return self.bound[handle] == platform_id.lower()
        if handle in self.console_handles or handle in BUILT_IN_RESERVED:
            return platform_id.partition(":")[0] == CONSOLE
        return True

    def handle_for(self, platform_id: str) -> str | None:
        """The handle kept for this account, if ADMINS binds one."""
        return next((h for h, pid in self.bound.items() if pid == platform_id.lower()), None)


def _handle(raw: str) -> str:
    handle = raw.strip().removeprefix("@").lower()
    if not HANDLE_RE.match(handle):
        raise ValueError(f"{raw.strip()!r} is not a handle (3 to 20 of a-z, 0-9, _) nor platform:id")
    return handle


def _platform_id(raw: str) -> str:
    platform, _, user_id = raw.strip().lower().partition(":")
    pattern = PLATFORM_ID_RE.get(platform)
    if pattern is None:
        known = ", ".join(f"{p}:<id>" for p in PLATFORM_ID_RE)
        raise ValueError(f"{raw.strip()!r}: unknown platform {platform!r} (use {known})")
    if not pattern.match(user_id):
        raise ValueError(f"{raw.strip()!r}: a {platform} id is a number, e.g. {platform}:12345")
    return f"{platform}:{user_id}"


def handle_only_warning(admins: Admins, messengers: list[str]) -> str | None:
    """The loud line for a bot whose ADMINS has handles alone: on a messenger they are nobody."""
    if not admins.console_handles or not messengers:
        return None
    names = ", ".join(sorted(admins.console_handles))
    return (
        f"WARNING: ADMINS {names} name handles only; on {' and '.join(messengers)} they are NOT admins, since "
        f"anyone can pick a name. Name them by account: {sorted(admins.console_handles)[0]}=telegram:<user id>."
    )
