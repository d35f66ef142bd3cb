"""The benchmark (bench/) at a tiny scale on SQLite, so that it keeps working as the core changes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from bench import cli, load
from core.db import create_engine
from core.models import Follow, Like, Post

LABELS = (
    "/feed (first page)",
    "/feed (deep page, Older ▶)",
    "/profile <handle>",
    "/top",
    "/like <post> (button)",
    "/follow <handle> (button)",
    "/unfollow <handle>",
    "offline image 1024x1024",
)


def tiny(out: Path, *extra: str) -> list[str]:
    return ["--db", "sqlite", "--scale", "0.002", "--iterations", "20", "--warmup", "2", "--out", str(out), *extra]


async def test_the_benchmark_prints_figures_for_every_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = await cli.run(cli.parse(tiny(tmp_path, "--images", "1")))
    printed = capsys.readouterr().out
    assert "building" in printed
    for label in LABELS:
        [line] = [line for line in printed.splitlines() if line.strip().startswith(label)]
        count, p50, p99, worst = (float(v) for v in line.strip().removeprefix(label).split()[:4])
        assert count >= 1 and 0 < p50 <= p99 <= worst, line
    timings = {t.label: t for result in results for t in result.timings}
    assert len(timings["/top"].samples_ms) == 20
    assert "PRAGMA journal_mode=WAL" in printed and "live: wal" in printed


async def test_a_second_run_reuses_the_network_and_leaves_it_as_built(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await cli.run(cli.parse(tiny(tmp_path, "--images", "0")))
    capsys.readouterr()
    await cli.run(cli.parse(tiny(tmp_path, "--images", "0")))
    assert "building" not in capsys.readouterr().out
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'network-x0.002.db'}")
    try:
        built = await load.counts(engine)
        async with engine.connect() as conn:
            likes = await conn.scalar(select(func.count()).select_from(Like))
            follows = await conn.scalar(select(func.count()).select_from(Follow))
            like_total = await conn.scalar(select(func.sum(Post.like_count)))
    finally:
        await engine.dispose()
    # Every like was toggled twice and every follow undone: the counts are as built, and consistent.
    assert (likes, follows) == (built["likes"], built["follows"])
    assert like_total == likes


async def test_stale_data_is_moved_to_the_present_with_its_hot_score(tmp_path: Path) -> None:
    await cli.run(cli.parse(tiny(tmp_path, "--images", "0")))
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'network-x0.002.db'}")
    try:
        async with engine.begin() as conn:
            before = (await conn.execute(text("SELECT max(created_at), max(hot) FROM posts"))).one()
            two_days_ago = datetime.now(UTC) - timedelta(days=2)
            await load.write_meta(conn, {"now": two_days_ago.isoformat()})
        await load.catch_up(engine, print)
        async with engine.connect() as conn:
            after = (await conn.execute(text("SELECT max(created_at), max(hot) FROM posts"))).one()
            meta = await load.read_meta(conn)
    finally:
        await engine.dispose()
    moved = datetime.fromisoformat(after[0]) - datetime.fromisoformat(before[0])
    assert abs(moved.total_seconds() - 2 * 86_400) < 5
    assert after[1] - before[1] == pytest.approx(2 * 24 / 4, abs=0.01)  # 4-hour doubling: 12 units in 2 days
    assert json.loads(meta["counts"])["posts"] == 2000
