"""Peak memory of ``thinkchain ask`` on the embedded default model, against the model's size.

Each run is a fresh process; its peak resident set size comes from the kernel (``wait4``'s
rusage), so nothing is sampled or missed.  The weights are read into memory (not mapped):
the CPU backend repacks most of them, and the copy in use is all that stays resident.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._report import stats, write_section
from thinkchain.chain.settings import DEFAULT_MODE
from thinkchain.models.embedded import DEFAULT_MODEL, path_of

QUESTION = "How many letters r are in the word strawberry?"
MIB = 1024 * 1024


def peak_rss(args: list[str]) -> tuple[int, int]:
    """(peak RSS in bytes, exit status) of one command."""
    proc = subprocess.Popen(
        args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ}
    )
    _, status, usage = os.wait4(proc.pid, 0)
    return usage.ru_maxrss * 1024, os.waitstatus_to_exitcode(status)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    model = path_of(DEFAULT_MODEL)
    size = model.stat().st_size
    command = [
        sys.executable, "-m", "thinkchain", "ask", "--no-history", "--model-path", str(model),
        QUESTION,
    ]  # fmt: skip
    peaks = []
    for run in range(args.runs):
        peak, code = peak_rss(command)
        if code != 0:
            sys.exit(f"thinkchain ask failed with exit status {code}")
        peaks.append(peak)
        print(f"run {run + 1}: peak RSS {peak / MIB:,.0f} MiB", flush=True)
    limit = size + 500 * MIB
    over = [p - size for p in peaks]
    body = f"""
`thinkchain ask --no-history --model-path <default model> "{QUESTION}"` (default settings:
the `{DEFAULT_MODE}` mode, one sequence, 8,192-token context, weights read rather than
mapped), {args.runs} fresh processes; peak resident set size from the kernel. min / median / max.

| | MiB |
|---|---|
| model file (Qwen2.5-Coder-1.5B-Instruct Q4_K_M) | {size / MIB:,.0f} |
| peak RSS of `thinkchain ask` | {stats([p / MIB for p in peaks], "{:,.0f}")} |
| peak RSS above the model size | {stats([o / MIB for o in over], "{:,.0f}")} |
| limit (model size + 500 MiB) | {limit / MIB:,.0f} |

Within the limit in {sum(p <= limit for p in peaks)}/{args.runs} runs.
"""
    write_section("memory", "Peak memory of thinkchain ask", body)
    print(body)


if __name__ == "__main__":
    main()
