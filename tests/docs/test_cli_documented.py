"""Each command's page documents every option the command has.

The options are read from the installed command's own `--help` (the public interface, whatever
module defines it), so an option added without a line in its manual fails here, and the
manual's tables cannot fall behind the code.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Each command, the page that is its manual, and one option it must have (so that a --help
# this test can no longer read fails instead of passing with nothing to check).
MANUALS = {
    ("ask",): ("docs/ask.md", "--strategy"),
    ("ui",): ("docs/page.md", "--port"),
    ("eval",): ("docs/evaluation.md", "--dataset"),
    ("proxy",): ("docs/proxy.md", "--reasoning-format"),
    ("serve",): ("docs/models.md", "--engine"),
    ("models", "pull"): ("docs/models.md", "--source"),
}
CODE = re.compile(r"```.*?```|`[^`\n]+`|^(?: {4}|\t).*$", re.M | re.S)


def options(command: tuple[str, ...]) -> set[str]:
    env = {**os.environ, "COLUMNS": "250", "NO_COLOR": "1", "TERM": "dumb"}
    shown = subprocess.run(
        [sys.executable, "-m", "thinkchain", *command, "--help"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    ).stdout
    # A row of the options panel starts with the option's long name ("│ *  --dataset  <str>").
    return set(re.findall(r"^│[ *]+(--[a-z][\w-]*)", shown, re.M)) - {"--help"}


def documented(page: str) -> set[str]:
    """The options a page names in code: inline code, tables' code cells, command lines."""
    text = (ROOT / page).read_text(encoding="utf-8")
    return {name for code in CODE.findall(text) for name in re.findall(r"--[a-z][\w-]*", code)}


@pytest.mark.parametrize("command", list(MANUALS), ids=" ".join)
def test_every_option_is_in_its_manual(command: tuple[str, ...]):
    page, known = MANUALS[command]
    found = options(command)
    assert known in found
    assert sorted(found - documented(page)) == []
