"""What the sandbox costs per code run, start to result, on each isolation path.

Each path runs the same code N times, interleaved so that machine noise falls on all of them
alike: a bare ``python -I -S -c`` (the floor: one interpreter start), the sandbox through
bubblewrap, and the sandbox's unshare fallback.  Two pieces of code: ``print(1)`` (pure
overhead) and a small computation a model might write.  The isolation probe, paid once per
process on the first run, is timed separately.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._report import write_section
from thinkchain.sandbox import Sandbox, SandboxLimits, isolation_report
from thinkchain.sandbox.layout import interpreter

CODES = {
    "`print(1)`": "print(1)",
    "small computation": (
        "from fractions import Fraction\n"
        "import itertools\n"
        "total = sum(Fraction(1, n) for n in range(1, 200))\n"
        "pairs = sum(1 for a, b in itertools.combinations(range(300), 2) if (a + b) % 7 == 0)\n"
        "print(total.numerator % 1000, pairs)\n"
    ),
}


def bare(code: str) -> Callable[[], None]:
    argv = [interpreter().executable, "-I", "-S", "-c", code]

    def run() -> None:
        subprocess.run(argv, capture_output=True, check=True)

    return run


def sandboxed(sandbox: Sandbox, code: str) -> Callable[[], None]:
    def run() -> None:
        result = sandbox.run(code)
        assert result.ok, result

    return run


def p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10)[-1] if len(values) > 1 else values[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()

    started = time.perf_counter()
    auto = isolation_report()
    probe_ms = (time.perf_counter() - started) * 1000
    paths: dict[str, Callable[[str], Callable[[], None]]] = {"bare `python -I -S -c`": bare}
    if isolation_report("bwrap").works:
        bwrap = Sandbox(method="bwrap")
        paths["sandbox, bubblewrap"] = lambda code: sandboxed(bwrap, code)
    fallback = Sandbox(SandboxLimits(require_isolation=False), method="fallback")
    paths["sandbox, unshare fallback"] = lambda code: sandboxed(fallback, code)

    rows = []
    for label, code in CODES.items():
        runners = {name: make(code) for name, make in paths.items()}
        times: dict[str, list[float]] = {name: [] for name in runners}
        for runner in runners.values():
            runner()  # warm: the page cache, the interpreter's files
        for _ in range(args.runs):
            for name, runner in runners.items():
                t0 = time.perf_counter()
                runner()
                times[name].append((time.perf_counter() - t0) * 1000)
        floor = statistics.median(times["bare `python -I -S -c`"])
        for name, values in times.items():
            median = statistics.median(values)
            rows.append(
                f"| {label} | {name} | {min(values):.0f} | {median:.0f} | {p90(values):.0f} "
                f"| {median - floor:+.0f} |"
            )

    table = "\n".join(
        [
            "| code | path | min ms | median ms | p90 ms | median over bare |",
            "|---|---|---|---|---|---|",
            *rows,
        ]
    )
    layers = ", ".join(x.name for x in auto.layers if x.holds)
    load = os.getloadavg()[0]
    body = (
        f"{args.runs} runs of each code on each path, interleaved; wall time from the call to "
        "the result (the sandbox's figure includes making and removing its temporary folder, "
        "the bootstrap, the limits, reading the output and the sweep for leftover "
        "processes).\n\n"
        f"{table}\n\n"
        f"Load average when the runs ended: {load:.1f} (the cores are shared with other work)"
        ". "
        f"The fallback runs with `require_isolation=False`"
        f"{'' if isolation_report('fallback').safe else ' (it is not fully isolated here)'}. "
        f"The isolation probe, run once per process before the first code, took "
        f"{probe_ms:.0f} ms. Layers holding on this machine with the default method "
        f"({auto.method}): {layers}."
    )
    print(table)
    print(f"isolation probe: {probe_ms:.0f} ms ({auto.method})")
    path = write_section("sandbox", "Sandbox overhead per code run", body)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
