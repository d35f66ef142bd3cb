"""Plain-text tables of the figures, and the SQLite settings with the reason for each."""

from __future__ import annotations

from collections.abc import Iterable

from bench.commands import Timing
from core.db import SQLITE_PRAGMAS

TARGET_MS = 10.0

# Why each pragma in core.db.SQLITE_PRAGMAS is there (keyed by pragma name).
PRAGMA_REASONS = {
    "journal_mode": "WAL: readers (feeds, profiles) never wait for a writer, and a commit appends to the log "
    "instead of rewriting pages through a rollback journal.",
    "synchronous": "NORMAL: under WAL a commit does not fsync (only checkpoints do); an app crash loses nothing, "
    "a power cut may lose the last commits but never corrupts the file.",
    "busy_timeout": "5000 ms: a second writer (a like while a follow commits) waits for the lock instead of "
    "failing at once with 'database is locked'.",
    "foreign_keys": "ON: SQLite ignores foreign keys unless asked per connection; deletes cascade through them.",
}


def table(title: str, timings: Iterable[Timing], *, target: float | None = None) -> str:
    lines = [title, f"  {'command':<30} {'n':>6} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}"]
    for timing in timings:
        p99 = timing.percentile(99)
        flag = "" if target is None else ("  ok" if p99 < target else f"  OVER {target:g} ms")
        lines.append(
            f"  {timing.label:<30} {len(timing.samples_ms):>6} {timing.percentile(50):>8.2f} {p99:>8.2f}"
            f" {max(timing.samples_ms):>8.2f}{flag}"
        )
    return "\n".join(lines)


def pragmas(live: dict[str, str]) -> str:
    """The settings from core.db, the values a live connection reports, and why."""
    lines = ["SQLite settings (core.db.SQLITE_PRAGMAS):"]
    for pragma in SQLITE_PRAGMAS:
        name = pragma.removeprefix("PRAGMA ").split("=", 1)[0].strip()
        lines.append(f"  {pragma:<28} live: {live.get(name, '?'):<6} {PRAGMA_REASONS.get(name, '')}")
    return "\n".join(lines)
