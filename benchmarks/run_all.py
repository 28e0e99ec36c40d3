"""Run every benchmark and probe script in this folder (``bench_*.py``, ``probe_*.py``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

if __name__ == "__main__":
    failed = []
    for script in [*sorted(HERE.glob("bench_*.py")), *sorted(HERE.glob("probe_*.py"))]:
        print(f"== {script.name}", flush=True)
        if subprocess.run([sys.executable, str(script)], cwd=HERE.parent).returncode != 0:
            failed.append(script.name)
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")
