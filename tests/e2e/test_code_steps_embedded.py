"""Code steps on the real embedded default model: its program runs in the real sandbox."""

from __future__ import annotations

import json
import subprocess
import sys

QUESTION = "How many letters r are in the word strawberry?"


def test_ask_with_python_runs_the_models_program_and_shows_its_output(default_model_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "thinkchain",
            "ask",
            "--model-path",
            str(default_model_path),
            "--tools",
            "python",
            "--seed",
            "0",
            "--json",
            "--no-history",
            QUESTION,
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    runs = [run for step in doc["steps"] for run in step.get("runs", [])]
    assert runs, "the model wrote no program"
    first = runs[0]
    assert first["status"] == "ok" and first["output"].strip()
    # The program is the one the step shows, and its output was printed under the step.
    assert first["code"] in next(s["content"] for s in doc["steps"] if s.get("runs"))
    assert first["output"].strip() in proc.stderr
