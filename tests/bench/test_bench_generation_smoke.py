"""The generation benchmark (bench/generation.py) at a tiny scale on SQLite, so it keeps working as the core changes."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from bench import generation
from bench.gen_backend import FakeRemoteBackend
from core.gen.backend import ImageRequest


def rows_of(printed: str, title: str) -> list[list[str]]:
    """The figures under the table whose title starts with `title`."""
    lines = printed.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(title))
    assert lines[start + 1].split()[0] == "concurrency", lines[start + 1]
    rows = []
    for line in lines[start + 2 :]:
        if not line.strip() or not line.split()[0].isdigit():
            break
        rows.append(line.split())
    return rows


async def test_the_benchmark_prints_figures_for_every_concurrency(capsys: pytest.CaptureFixture[str]) -> None:
    args = generation.parse(["--db", "sqlite", "--latency", "0.2", "--concurrency", "1,4", "--jobs", "8", "--local"])
    rows = await generation.run(args)
    printed = capsys.readouterr().out

    remote = rows_of(printed, "SQLite, fake remote backend (0.2 s per image)")
    assert [int(r[0]) for r in remote] == [1, 4]
    for cells in remote:
        concurrency, jobs, wall, enqueue, rate, ideal, share, overhead, turnaround, peak = cells
        assert int(jobs) == 8 and float(wall) > 0.2 * 8 / int(concurrency) and float(enqueue) > 0
        assert float(ideal) == pytest.approx(int(concurrency) / 0.2)
        assert float(rate) == pytest.approx(8 / float(wall), rel=0.1)  # both printed rounded
        assert 0 < float(share.rstrip("%")) <= 100
        assert float(overhead) > -1 and float(turnaround) > 0
        assert int(peak) == int(concurrency)  # the queue really ran that many images at once
    assert "target 98% of ideal:" in printed

    local = rows_of(printed, "SQLite, offline backend")
    assert [int(r[0]) for r in local] == [1, 4] and all(float(r[4]) > 0 for r in local)
    assert "load average while running" in printed
    assert len(rows) == 4 and {r.backend for r in rows} == {"remote", "local"}


async def test_the_fake_remote_backend_waits_its_latency_and_answers_a_distinct_png() -> None:
    backend = FakeRemoteBackend(0.01)
    first = await backend.generate(ImageRequest("a fox", 1))
    second = await backend.generate(ImageRequest("a fox", 2))
    assert first.data != second.data  # the media store writes a new file for every job
    for image in (first, second):
        with Image.open(io.BytesIO(image.data)) as png:
            png.load()
            assert png.size == (image.width, image.height) and png.text["request"].startswith(str(image.seed))
    assert backend.calls == 2 and backend.max_running == 1
    assert backend.ends[0] - backend.starts[0] >= 0.01
    assert backend.turnaround(1) == pytest.approx(backend.starts[1] - backend.ends[0])


def test_concurrency_lists_are_checked() -> None:
    assert generation.parse(["--concurrency", "2,8"]).concurrency == [2, 8]
    for bad in ("0", "two", ""):
        with pytest.raises(SystemExit):
            generation.parse(["--concurrency", bad])


def test_jobs_and_latency_are_checked(capsys: pytest.CaptureFixture[str]) -> None:
    args = generation.parse(["--jobs", "16", "--latency", "0.5"])
    assert (args.jobs, args.latency) == (16, 0.5)
    for option, bad in (("--jobs", "0"), ("--jobs", "-1"), ("--jobs", "x"), ("--latency", "0"), ("--latency", "-1")):
        with pytest.raises(SystemExit):
            generation.parse([option, bad])
        assert f"argument {option}:" in capsys.readouterr().err  # argparse's one line, not a traceback


async def test_requests_can_arrive_all_at_once(capsys: pytest.CaptureFixture[str]) -> None:
    # Each image takes long enough that all four slots fill even when enqueueing the burst is slow.
    args = generation.parse(["--latency", "0.8", "--concurrency", "4", "--jobs", "8", "--arrival", "burst"])
    [row] = await generation.run(args)
    printed = capsys.readouterr().out
    [cells] = rows_of(printed, "SQLite, fake remote backend (0.8 s per image), requests all at once")
    assert cells[0] == "4" and row.jobs == 8 and row.peak == 4 and row.rate > 0


async def test_the_warm_up_round_is_not_counted_and_can_be_left_out() -> None:
    for warmup in (True, False):
        backend = FakeRemoteBackend(0.1)
        row = await generation.run_once("sqlite", backend, 2, 4, 2 / 0.1, warmup=warmup)
        # run_once checked the posts: the warm-up's two and the run's four; the backend counts the run's only.
        assert (row.jobs, backend.calls, len(backend.starts), row.peak) == (4, 4, 4, 2)
        assert backend.latency == 0.1
    assert generation.parse([]).warmup and not generation.parse(["--no-warmup"]).warmup
