"""Plain-text tables of the figures, and the SQLite settings with the reason for each."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from bench.commands import Timing
from core.db import SQLITE_PRAGMAS


@dataclass(frozen=True, slots=True)
class Target:
    """A command's p99 may be `p99_ratio` times its floor's p99, or `p99_ms` if that is looser; p50 at most `p50_ms`."""

    p99_ratio: float
    p99_ms: float = 0.0
    p50_ms: float | None = None

    def misses(self, timing: Timing) -> list[str]:
        floor = timing.floor(99)
        allowed = max(self.p99_ms, self.p99_ratio * floor) if floor is not None else self.p99_ms
        missed = [f"p99 > {allowed:.2f}"] if timing.percentile(99) > allowed else []
        if self.p50_ms is not None and timing.percentile(50) > self.p50_ms:
            missed.append(f"p50 > {self.p50_ms:g}")
        return missed


TARGETS = {"sqlite": Target(5.0, p99_ms=3.0, p50_ms=1.5), "postgres": Target(5.0)}

# Why each pragma in core.db.SQLITE_PRAGMAS is there (keyed by pragma name).
PRAGMA_REASONS = {
    "journal_mode": "WAL: readers (feeds, profiles) never wait for a writer, and a commit appends to the log "
    "instead of rewriting pages through a rollback journal.",
    "synchronous": "NORMAL: under WAL a commit does not fsync (only checkpoints do); an app crash loses nothing, "
    "a power cut may lose the last commits but never corrupts the file.",
    "wal_autocheckpoint": "10000 pages: the background checkpoint (core.db.Checkpointer) folds the WAL back "
    "every second, off the request path; SQLite's own checkpoint inside a commit is only the backstop.",
    "foreign_keys": "ON: SQLite ignores foreign keys unless asked per connection; deletes cascade through them.",
}


def table(title: str, timings: Iterable[Timing], *, target: Target | None = None, quiet: bool = False) -> str:
    """p50, p99 and max through the command layer, then the floor's p50 and p99 and the p99 ratio when
    measured; with a target, a verdict per command, given only when the machine was `quiet`."""
    timings = list(timings)
    floors = any(t.floor_ms for t in timings)
    head = f"  {'command':<30} {'n':>6} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}"
    if floors:
        head += f" {'raw p50':>8} {'raw p99':>8} {'p99 x':>6}"
    lines = [title, head]
    for timing in timings:
        p99 = timing.percentile(99)
        line = f"  {timing.label:<30} {len(timing.samples_ms):>6} {timing.percentile(50):>8.2f} {p99:>8.2f}"
        line += f" {max(timing.samples_ms):>8.2f}"
        raw50, raw99 = timing.floor(50), timing.floor(99)
        if raw50 is not None and raw99 is not None:
            line += f" {raw50:>8.2f} {raw99:>8.2f} {p99 / raw99:>6.1f}"
        lines.append(line + _verdict(timing, target, quiet))
    return "\n".join(lines)


def _verdict(timing: Timing, target: Target | None, quiet: bool) -> str:
    if target is None:
        return ""
    if not quiet:
        return "  not judged: machine busy"  # a neighbour's load is not our code's tail
    missed = target.misses(timing)
    return "  target met" if not missed else "  MISSED: " + ", ".join(missed)


def pragmas(live: dict[str, str]) -> str:
    """The settings from core.db, the values a live connection reports, and why."""
    lines = ["SQLite settings (core.db.SQLITE_PRAGMAS):"]
    for pragma in SQLITE_PRAGMAS:
        name = pragma.removeprefix("PRAGMA ").split("=", 1)[0].strip()
        lines.append(f"  {pragma:<28} live: {live.get(name, '?'):<6} {PRAGMA_REASONS.get(name, '')}")
    return "\n".join(lines)
