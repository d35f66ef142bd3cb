"""bench/idle_penalty.py at a tiny scale, so it keeps working as the core changes."""

from __future__ import annotations

import re

import pytest

from bench import idle_penalty


def test_it_prints_each_call_back_to_back_and_after_each_idle_period(capsys: pytest.CaptureFixture[str]) -> None:
    assert idle_penalty.main(["--calls", "20"]) == 0
    printed = capsys.readouterr().out
    rows = [line for line in printed.splitlines() if line.startswith(("session", "the person lookup"))]
    assert len(rows) == 3, printed
    for row in rows:
        figures = [float(f) for f in re.findall(r"(\d+\.\d+)(?! *x)", row)]
        ratios = [float(r) for r in re.findall(r"\( *(\d+\.\d)x\)", row)]
        assert len(figures) == 4 and all(f > 0 for f in figures), row
        assert len(ratios) == 3, row
    assert "machine load while measuring" in printed


def test_a_count_under_one_is_refused_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        idle_penalty.main(["--calls", "0"])
    assert "argument --calls: must be at least 1, not 0" in capsys.readouterr().err
