"""Every benchmark refuses a number that would break its run in argparse's one line, never a traceback
halfway through (bench/args.py)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bench import cli, digest, discord_ack, generation, idle_penalty, profile, scale

BAD: list[tuple[str, Callable[[list[str]], object], list[str], str]] = [
    ("bench", cli.parse, ["--scale", "-1"], "--scale"),
    ("bench", cli.parse, ["--scale", "nan"], "--scale"),
    ("bench", cli.parse, ["--iterations", "0"], "--iterations"),
    ("bench", cli.parse, ["--warmup", "-1"], "--warmup"),
    ("bench", cli.parse, ["--images", "many"], "--images"),
    ("bench.profile", profile.parse, ["/feed", "--calls", "0"], "--calls"),
    ("bench.profile", profile.parse, ["/feed", "--scale", "0"], "--scale"),
    ("bench.digest", digest.parse, ["--people", "0"], "--people"),
    ("bench.digest", digest.parse, ["--rate", "0"], "--rate"),
    ("bench.digest", digest.parse, ["--latency", "-0.1"], "--latency"),
    ("bench.digest", digest.parse, ["--in-flight", "0"], "--in-flight"),
    ("bench.discord_ack", discord_ack.parse, ["--count", "0"], "--count"),
    ("bench.discord_ack", discord_ack.parse, ["--scale", "-1"], "--scale"),
    ("bench.generation", generation.parse, ["--jobs", "0"], "--jobs"),
    ("bench.generation", generation.parse, ["--latency", "0"], "--latency"),
    ("bench.idle_penalty", idle_penalty.parse, ["--calls", "0"], "--calls"),
    ("bench.scale", scale.main, ["--workers", "0"], "--workers"),
    ("bench.scale", scale.main, ["--latency", "-2"], "--latency"),
    ("bench.scale", scale.main, ["--rows", "x"], "--rows"),
]


@pytest.mark.parametrize(("name", "parse", "argv", "option"), BAD, ids=[f"{b[0]} {' '.join(b[2])}" for b in BAD])
def test_a_bad_number_is_refused_in_one_line(
    name: str, parse: Callable[[list[str]], object], argv: list[str], option: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        parse(argv)
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert exited.value.code == 2 and f"argument {option}:" in error, (name, error)


def test_good_numbers_pass() -> None:
    args = cli.parse(["--scale", "0.01", "--iterations", "5", "--warmup", "0", "--images", "0"])
    assert (args.scale, args.iterations, args.warmup, args.images) == (0.01, 5, 0, 0)
    assert digest.parse(["--latency", "0", "--deliveries", "0"]).latency == 0.0
