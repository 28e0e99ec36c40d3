"""Shared by the benchmark scripts: machine facts, timing statistics, and docs/benchmarks.md.

Each script writes its own section (``benchmarks/sections/<name>.md``); docs/benchmarks.md is
rebuilt from every section, so scripts can be rerun one at a time.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SECTIONS = ROOT / "benchmarks" / "sections"
REPORT = ROOT / "docs" / "benchmarks.md"
# The shared GSM8K file, read in place (it is not copied into the project).
GSM8K = ROOT.parent / "shared" / "datasets" / "gsm8k_train_500.jsonl"


def gsm8k_items() -> list[dict]:
    """Every item of the shared GSM8K file, in file order."""
    lines = GSM8K.read_text(encoding="utf-8").split("\n")
    return [json.loads(line) for line in lines if line.strip()]


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    except (ValueError, OSError):
        mem = 0.0
    versions = ", ".join(
        f"{p} {_version(p)}" for p in ("llama-cpp-python", "llguidance", "openai", "fastapi")
    )
    return (
        f"{cpu}, {len(os.sched_getaffinity(0))} cores, {mem:.0f} GiB RAM, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}; "
        f"{versions}"
    )


def stats(values: Sequence[float], fmt: str = "{:.2f}") -> str:
    """``min / median / max`` of a sample, formatted."""
    if not values:
        return "n/a"
    return " / ".join(fmt.format(v) for v in (min(values), statistics.median(values), max(values)))


def command_line() -> str:
    args = " ".join(sys.argv[1:])
    script = Path(sys.argv[0]).resolve().relative_to(ROOT)
    return f"python {script}{(' ' + args) if args else ''}"


def write_section(name: str, title: str, body: str) -> Path:
    """Write one benchmark's section and rebuild docs/benchmarks.md from all sections."""
    SECTIONS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    text = (
        f"## {title}\n\n"
        f"*Measured {stamp} on: {machine()}.*\n\n"
        f"Command: `{command_line()}`\n\n{body.strip()}\n"
    )
    path = SECTIONS / f"{name}.md"
    path.write_text(text, encoding="utf-8")
    rebuild()
    return path


def rebuild() -> None:
    parts = [
        "# Benchmarks\n",
        "Numbers from the scripts in `benchmarks/`, written by the scripts themselves "
        "(`make bench` runs them all). Timings are never asserted in tests: these machines "
        "are noisy, so each figure gives min / median / max over several runs, and every "
        "comparison is measured side by side in one run.\n",
    ]
    for section in sorted(SECTIONS.glob("*.md")):
        parts.append(section.read_text(encoding="utf-8").strip() + "\n")
    REPORT.write_text("\n".join(parts), encoding="utf-8")


def git_revision() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
        ).stdout.strip()
    except OSError:
        return "unknown"
