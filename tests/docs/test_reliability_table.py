"""docs/reliability.md names, for every fault, the tests that show the behaviour it promises.

A renamed or deleted test leaves the table pointing at nothing, and a reader checking a promise
finds no proof; this keeps every name in the table real.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def named_tests() -> list[tuple[str, str]]:
    """(file under tests/, test name) for each `file::test` or `::test` cell of the table."""
    text = (ROOT / "docs" / "reliability.md").read_text(encoding="utf-8")
    pairs, last_file = [], ""
    for cell in re.findall(r"`([\w/]*(?:\.py)?::\w+)`", text):
        file, _, test = cell.partition("::")
        last_file = file or last_file  # `::name` continues the file named before it
        pairs.append((last_file, test))
    return pairs


def test_the_table_names_tests():
    assert len(named_tests()) > 30


def test_every_test_the_table_names_exists():
    missing = [
        f"{file}::{test}"
        for file, test in named_tests()
        if not (ROOT / "tests" / file).is_file()
        or not re.search(rf"^(?:async )?def {test}\(", (ROOT / "tests" / file).read_text(), re.M)
    ]
    assert missing == []
