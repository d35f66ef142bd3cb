"""The Discord acknowledgement benchmark (bench/discord_ack.py) at a tiny scale on SQLite, so it keeps working."""

from __future__ import annotations

import discord.http
import pytest

from bench import discord_ack
from tests.databases import TEST_DATABASE_URL

LABELS = ("floor: /ping (discord.py alone)", "all commands", "/like", "/follow", "/profile", "/feed", "/imagine")


DATABASES = ["sqlite"] + (["postgres"] if TEST_DATABASE_URL else [])


@pytest.mark.parametrize("db", DATABASES)
async def test_the_benchmark_times_every_command_from_gateway_event_to_callback(
    db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    base = discord.http.Route.BASE
    where = ["--db", db, "--pg-url", TEST_DATABASE_URL or ""]
    # A window long enough that every answer is direct on any machine, so the count below is exact.
    args = ["--count", "10", "--scale", "0.002", "--direct-seconds", "2", *where]
    result = await discord_ack.run(discord_ack.parse(args))
    printed = capsys.readouterr().out
    for label in LABELS:
        [line] = [line for line in printed.splitlines() if line.strip().startswith(label)]
        count, p50, p99, worst = (float(v) for v in line.strip().removeprefix(label).split()[:4])
        assert count >= 1 and 0 < p50 <= p99 <= worst, line
    assert len(result.every.samples_ms) == 10 and len(result.floor.samples_ms) == 10
    assert {label: len(t.samples_ms) for label, t in result.by_command.items()} == {
        "/like": 2, "/follow": 2, "/profile": 2, "/feed": 2, "/imagine": 2
    }  # fmt: skip
    assert (result.outcome.late, result.outcome.failed) == (0, 0) and "10 answered (type 4)" in printed
    assert "ratio to the floor: p50" in printed and "machine load" in printed
    assert "verdict withheld" in printed or "target p99 under 300 ms:" in printed
    assert base == discord.http.Route.BASE  # discord.py is pointed back where it was


def test_the_verdict_is_withheld_on_a_busy_machine() -> None:
    quiet, busy = discord_ack.Load(0.02, 0.0), discord_ack.Load(0.5, 0.0)
    assert discord_ack.verdict(120, quiet).endswith(": ok")
    assert "OVER" in discord_ack.verdict(450, quiet)
    assert discord_ack.verdict(450, busy).startswith("verdict withheld")
