"""What the sandbox costs per code run, start to result, on each isolation path.

Each path runs the same code N times, interleaved so that machine noise falls on all of them
alike: a bare ``python -I -S -c`` (the floor: one interpreter start), the sandbox through
bubblewrap, and the sandbox's unshare fallback; and both again as the sandbox was at an
earlier commit (``--before``, by default the last one before the hostile-code work of issue
28), read from git into this same process, so a change's cost is measured side by side.
Two pieces of code: ``print(1)`` (pure overhead) and a small computation a model might
write.  The isolation probe, paid once per process on the first run, is timed separately.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._report import ROOT, write_section
from thinkchain.sandbox import Sandbox, SandboxLimits, isolation_report
from thinkchain.sandbox.layout import interpreter

# The sandbox before the hostile-code work of issue 28 (its last commit before it).
BEFORE = "8deee64"
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


def sandbox_at(revision: str) -> ModuleType | None:
    """``thinkchain.sandbox`` as it was at ``revision``, imported beside today's, or None."""
    folder = Path(tempfile.mkdtemp(prefix="bench-sandbox-"))
    listed = subprocess.run(
        ["git", "ls-tree", "--name-only", revision, "src/thinkchain/sandbox/"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    if listed.returncode != 0 or not listed.stdout.strip():
        return None
    for path in listed.stdout.split():
        shown = subprocess.run(["git", "show", f"{revision}:{path}"], capture_output=True, cwd=ROOT)
        (folder / Path(path).name).write_bytes(shown.stdout)
    # A subpackage of thinkchain, so its relative imports (..history, ..models) resolve.
    name = f"thinkchain._sandbox_{revision}"
    spec = importlib.util.spec_from_file_location(
        name, folder / "__init__.py", submodule_search_locations=[str(folder)]
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10)[-1] if len(values) > 1 else values[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--before", default=BEFORE, help="the commit to compare with")
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
    old = sandbox_at(args.before)
    if old is not None:
        before = f"before ({args.before})"
        if old.isolation_report("bwrap").works:
            old_bwrap = old.Sandbox(method="bwrap")
            paths[f"sandbox, bubblewrap, {before}"] = lambda code: sandboxed(old_bwrap, code)
        old_limits = old.SandboxLimits(require_isolation=False)
        old_fallback = old.Sandbox(old_limits, method="fallback")
        paths[f"sandbox, unshare fallback, {before}"] = lambda code: sandboxed(old_fallback, code)

    rows = []
    medians: dict[tuple[str, str], float] = {}
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
            medians[label, name] = median
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
    ratios = []
    for name in ("sandbox, bubblewrap", "sandbox, unshare fallback"):
        old_name = f"{name}, before ({args.before})"
        if ("`print(1)`", old_name) in medians and ("`print(1)`", name) in medians:
            now, then = medians["`print(1)`", name], medians["`print(1)`", old_name]
            ratios.append(
                f"{name.split(', ')[1]} {now:.0f} ms against {then:.0f} ms ({now / then:.2f} x)"
            )
    compared = (
        f" `print(1)` now against commit {args.before}, side by side in this run: "
        + "; ".join(ratios)
        + "."
        if ratios
        else ""
    )
    layers = ", ".join(x.name for x in auto.layers if x.holds)
    load = os.getloadavg()[0]
    body = (
        f"{args.runs} runs of each code on each path, interleaved; wall time from the call to "
        "the result (the sandbox's figure includes making and removing its temporary folder, "
        "the bootstrap, the limits, the run's memory cgroup where there is one, reading the "
        "output and the sweep for leftover processes). The rows marked *before* are the "
        f"sandbox at commit {args.before} (before the hostile-code work of issue 28: no "
        "memory cgroup, no covered site-packages or /proc files, its own /dev from "
        "bubblewrap's --dev, the code file bound from the host), read from git and run in "
        "this same process.\n\n"
        f"{table}\n\n"
        f"{compared.strip()}\n\n"
        f"Load average when the runs ended: {load:.1f} (the cores are shared with other work)"
        ". "
        f"The fallback runs with `require_isolation=False`"
        f"{'' if isolation_report('fallback').safe else ' (it is not fully isolated here)'}. "
        f"The isolation probe, run once per process before the first code, took "
        f"{probe_ms:.0f} ms. Layers holding on this machine with the default method "
        f"({auto.method}): {layers}."
    )
    print(table)
    print(compared.strip())
    print(f"isolation probe: {probe_ms:.0f} ms ({auto.method})")
    path = write_section("sandbox", "Sandbox overhead per code run", body)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
