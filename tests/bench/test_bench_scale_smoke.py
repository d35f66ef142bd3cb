"""The scale-out benchmark (bench/scale.py) at a tiny scale on PostgreSQL (it starts several
processes on one database), and its --help anywhere, so it keeps working as the core changes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench import scale
from tests.processes import TEST_DATABASE_URL, needs_postgres

ROOT = Path(__file__).resolve().parents[2]


def test_help_names_the_options() -> None:
    shown = subprocess.run(
        [sys.executable, "-m", "bench.scale", "--help"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert shown.startswith("usage: python -m bench.scale") and "--workers" in shown and "--senders" in shown


@needs_postgres
def test_a_tiny_run_prints_both_tables(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert TEST_DATABASE_URL is not None
    args = ["--db", TEST_DATABASE_URL, "--workers", "1", "--concurrency", "2", "--latency", "0.2", "--rounds", "2"]
    args += ["--senders", "2", "--rate", "20", "--rows", "30", "--out", str(tmp_path)]
    assert scale.main(args) == 0
    shown = capsys.readouterr().out
    assert "| worker processes | images/min | ideal | share of ideal |" in shown
    assert "outbox: 2 sender processes, 30 rows, configured 20/s" in shown and "429s: 0" in shown
