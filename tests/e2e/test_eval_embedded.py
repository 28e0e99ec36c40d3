"""``thinkchain eval`` on the real embedded model: two items, two modes, every output file.

Checks structure, never accuracy: a 0.5B model's answers are what they are.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


# Four short generations; the limit only guards against a hang on a crowded two-core machine.
@pytest.mark.timeout(1200)
def test_tiny_evaluation_on_the_small_model(small_model_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "letters"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "thinkchain",
            "eval",
            "--dataset",
            "letters",
            "--n",
            "2",
            "--modes",
            "direct,cot",
            "--model-path",
            str(small_model_path),
            "--final-max-tokens",
            "200",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=1100,
        env={**os.environ},
    )
    assert proc.returncode == 0, proc.stderr
    # The in-process model decodes --concurrency items side by side (4 by default).
    assert "one after another" not in proc.stderr
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    spans = sorted((r["started_at"], r["started_at"] + r["seconds"]) for r in rows)
    assert any(later[0] < earlier[1] for earlier, later in itertools.pairwise(spans)), spans
    assert sorted((r["id"], r["mode"]) for r in rows) == [
        ("letters-0-0000", "cot"),
        ("letters-0-0000", "direct"),
        ("letters-0-0001", "cot"),
        ("letters-0-0001", "direct"),
    ]
    for row in rows:
        assert row["error"] is None, row
        assert row["answer"].strip()
        assert row["completion_tokens"] > 0 and row["prompt_tokens"] > 0
        assert row["seconds"] > 0 and row["steps"] == 0
        assert row["correct"] == (row["prediction"] == row["gold"])
    summary = (out / "summary.md").read_text()
    assert "| direct | 2 |" in summary and "| cot | 2 |" in summary
    assert (out / "accuracy_vs_tokens.png").read_bytes()[:4] == b"\x89PNG"
    # The table is printed too.
    assert "direct" in proc.stdout and "95% CI" in proc.stdout
