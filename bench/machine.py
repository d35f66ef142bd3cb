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


def _server_seconds() -> dict[int, float]:
    """CPU seconds of each PostgreSQL server process on this machine, by pid (empty where there is no /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    found: dict[int, float] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # the process ended meanwhile
            continue
        name, _, rest = text.partition(") ")
        if name.endswith("(postgres"):
            fields = rest.split()
            found[int(stat.parent.name)] = (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return found


@dataclass(frozen=True, slots=True)
class Load:
    others: float  # share of all CPUs used by processes other than us and the PostgreSQL server
    server: float  # share used by PostgreSQL server processes (ours and anyone else's)


@dataclass(slots=True)
class CpuWatch:
    """How much of the machine's CPUs other processes used between start and stop."""

    wall: float
    busy: float | None
    own: float
    server: dict[int, float]

    @classmethod
    def start(cls) -> CpuWatch:
        return cls(time.perf_counter(), _busy_seconds(), _own_seconds(), _server_seconds())

    def stop(self) -> Load | None:
        busy, own, server = _busy_seconds(), _own_seconds(), _server_seconds()
        if busy is None or self.busy is None:
            return None
        capacity = (time.perf_counter() - self.wall) * (os.cpu_count() or 1)
        # Server processes that ended meanwhile are missed, so `others` can only be overstated.
        server_used = sum(max(0.0, used - self.server.get(pid, 0.0)) for pid, used in server.items())
        others = (busy - self.busy) - (own - self.own) - server_used
        return Load(max(0.0, others / capacity), min(1.0, server_used / capacity))


QUIET = 0.1  # other processes under this share of the CPUs: figures may be judged against targets


def is_quiet(load: Load | None) -> bool:
    return load is not None and load.others < QUIET


def describe_load(load: Load | None) -> str:
    if load is None:
        return "machine load: unknown (no /proc/stat)"
    note = "" if is_quiet(load) else "  -- a busy machine: tails are inflated, measure again when quiet"
    return (
        f"machine load while measuring: other processes used {load.others:.0%} of {os.cpu_count()} CPUs, "
        f"the PostgreSQL server {load.server:.0%}{note}"
    )
