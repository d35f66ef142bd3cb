"""How busy the rest of the machine was while we measured: on a shared 2-core box, other work moves the p99."""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass
from pathlib import Path


def _busy_seconds() -> float | None:
    """CPU seconds all processes have spent busy since boot (Linux /proc/stat), or None elsewhere."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except (OSError, ValueError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _own_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # every thread of ours, aiosqlite's included
    return usage.ru_utime + usage.ru_stime


@dataclass(slots=True)
class CpuWatch:
    """Share of the machine's CPUs that processes other than this one used between start and stop."""

    wall: float = 0.0
    busy: float | None = None
    own: float = 0.0

    @classmethod
    def start(cls) -> CpuWatch:
        return cls(time.perf_counter(), _busy_seconds(), _own_seconds())

    def others_share(self) -> float | None:
        busy = _busy_seconds()
        if busy is None or self.busy is None:
            return None
        elapsed = time.perf_counter() - self.wall
        others = (busy - self.busy) - (_own_seconds() - self.own)
        return max(0.0, others / (elapsed * (os.cpu_count() or 1)))


def describe_load(share: float | None, *, includes_server: bool) -> str:
    if share is None:
        return "machine load: unknown (no /proc/stat)"
    who = "other processes (the PostgreSQL server included)" if includes_server else "other processes"
    note = "" if includes_server or share < 0.1 else "  -- a busy machine: tails are inflated, measure again when quiet"
    return f"machine load while measuring: {who} used {share:.0%} of {os.cpu_count()} CPUs{note}"
