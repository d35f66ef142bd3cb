"""The README's example session, piped through the console exactly as written there."""

from __future__ import annotations

import re
from pathlib import Path

from tests.core.test_console import ROOT, run_bots

EXAMPLE = re.compile(r"```text\n\$ printf '([^']*)' \| bin/run\n(.*?)\n…\n```", re.DOTALL)


def readme_example() -> tuple[list[str], list[str]]:
    """(the lines piped in, the lines the README shows coming out)."""
    found = EXAMPLE.search((ROOT / "README.md").read_text(encoding="utf-8"))
    assert found is not None, "the README's piped example session is missing"
    typed = found.group(1).split("\\n")
    return [line for line in typed if line], found.group(2).splitlines()


def test_the_readme_example_session_gives_what_the_readme_shows(tmp_path: Path) -> None:
    typed, shown = readme_example()
    done = run_bots(tmp_path, typed)
    assert done.returncode == 0, done.stderr
    output = iter(done.stdout.splitlines())
    for line in shown:
        if line.lstrip().startswith("image: "):  # the path differs from machine to machine
            assert any(out.lstrip().startswith("image: ") for out in output), line
        else:
            assert line in output, f"{line!r} is not in the output, in order:\n{done.stdout}"
