"""The digest benchmarks (bench/digest.py) at a tiny scale, so they keep working as the core changes;
the fake platform's limits; and the outbox finding the benchmark led to (pictures rendered ahead)."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from bench import digest
from bench.digest_platform import FakeTelegram
from core import outbox
from core.app import Core
from core.messenger import RetryLater
from core.models import Delivery
from core.outbox import Outgoing
from core.replies import Reply

TINY = ["--db", "sqlite", "--people", "200", "--follows", "1000", "--posts", "2000", "--deliveries", "50"]
FAST = ["--rate", "100", "--platform-limit", "1000", "--latency", "0.001", "--images", "20"]


def figure(pattern: str, printed: str) -> list[str]:
    found = re.search(pattern, printed)
    assert found, f"{pattern!r} not in:\n{printed}"
    return [group.replace(",", "") for group in found.groups()]


async def test_both_parts_print_their_figures_at_a_tiny_scale(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await digest.run(digest.parse([*TINY, *FAST, "--out", str(tmp_path)]))
    printed = capsys.readouterr().out
    assert "building" in printed
    people, seconds, per_person = figure(r"compose_pass: ([\d,]+) people in ([\d.]+) s total, ([\d.]+) ms", printed)
    assert people == "200" and float(seconds) > 0 and float(per_person) > 0
    statements, floor, ratio = figure(
        r"floor \(the same ([\d,]+) composition queries .*\): ([\d.]+) s, .* ([\d.]+)x", printed
    )
    assert int(statements) >= 5 and float(floor) >= 0 and float(ratio) > 0
    queued, skipped = figure(r"outbox rows: ([\d,]+) queued, ([\d,]+) skipped", printed)
    assert int(queued) >= 50 and int(queued) + int(skipped) <= 200
    sent, of, pace, share = figure(r"sent ([\d,]+) of ([\d,]+): ([\d.]+) messages/s .* = ([\d.]+)% of", printed)
    assert sent == of == "50" and float(pace) > 0 and float(share) > 0
    [too_many] = figure(r"429s: (\d+)", printed)
    assert too_many == "0"
    collages, thumbnails = figure(r"rendering: ([\d,]+) collages and ([\d,]+) thumbnails made", printed)
    assert 1 <= int(collages) <= 50 and 1 <= int(thumbnails) <= 20  # 20 image files: one thumbnail each at most
    assert re.search(r"rendering limits the pace: (yes|no)", printed)


async def test_a_second_run_reuses_the_network(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = [*TINY, *FAST, "--deliveries", "0", "--out", str(tmp_path)]
    await digest.run(digest.parse(args))
    first = capsys.readouterr().out
    await digest.run(digest.parse(args))
    second = capsys.readouterr().out
    assert "building" in first and "building" not in second
    # Every run composes from an empty outbox, so it queues as many digests as the first.
    assert figure(r"([\d,]+) queued", first) == figure(r"([\d,]+) queued", second)


async def test_the_fake_platform_answers_429_beyond_telegrams_limits() -> None:
    now = [0.0]
    platform = FakeTelegram("bench", latency=0, clock=lambda: now[0])
    for chat in range(30):
        await platform.send(f"chat{chat}", Reply(text="hi"))
    with pytest.raises(RetryLater):  # a 31st message within the same second
        await platform.send("chat30", Reply(text="hi"))
    now[0] = 1.0  # the first 30 leave the sliding second
    await platform.send("chat30", Reply(text="hi"))
    now[0] = 1.5
    with pytest.raises(RetryLater) as refused:  # the same chat again within a second
        await platform.send("chat30", Reply(text="again"))
    assert refused.value.retry_after >= 1
    assert (len(platform.sent), platform.too_many, platform.busiest_second()) == (31, 2, 30)


class SlowPictures:
    """A renderer whose every picture takes most of a send interval, as a digest's new collage can."""

    render_ahead = True

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    async def render(self, session: AsyncSession, delivery: Delivery, payload: dict[str, Any]) -> Outgoing | None:
        await asyncio.sleep(self.seconds)
        return Outgoing(Reply(text=payload["text"]))

    async def sent(self, session: AsyncSession, delivery: Delivery, payload: dict[str, Any], ref: object) -> None:
        return None


async def test_slow_pictures_do_not_slow_the_pace(core: Core) -> None:
    # Rendered in turn, each row would take 30 ms of picture + 15 ms of network: 22 a second at most.
    rate, rows = 25.0, 30
    core.outbox.add_renderer("slow", SlowPictures(0.030))
    async with core.sessions() as session:
        for n in range(rows):
            await outbox.add(session, key=f"slow:{n}", platform="bench", chat_id=f"c{n}", kind="slow",
                             payload={"text": f"#{n}"})  # fmt: skip
        await session.commit()
    platform = FakeTelegram("bench", rate, latency=0.0075)
    core.register_messenger(platform)
    deadline = time.monotonic() + 10
    while len(platform.sent) < rows and time.monotonic() < deadline:  # noqa: ASYNC110 (the fake has no event)
        await asyncio.sleep(0.05)
    sent = platform.sent
    assert len(sent) == rows and platform.too_many == 0
    assert (rows - 1) / (sent[-1] - sent[0]) >= 0.9 * rate  # about 0.8 without rendering ahead
