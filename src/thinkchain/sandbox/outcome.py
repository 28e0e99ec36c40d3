"""From what the host saw of a run to its status and a sentence a small model can act on."""

from __future__ import annotations

import json
import signal
from typing import Any

from .limits import SandboxLimits
from .output import sanitize
from .process import Finished
from .result import Status

# bubblewrap reports a child killed by signal N as exit status 128 + N.
SIGNAL_EXIT_BASE = 128


def _seconds(value: float) -> str:
    return f"{value:g}"


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _report(raw: bytes) -> dict[str, Any] | None:
    """The bootstrap's outcome line, or None when the code never let it write one."""
    try:
        data = json.loads(raw.decode("utf-8").strip().splitlines()[0])
    except (ValueError, IndexError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) and "status" in data else None


def _killed(number: int, finished: Finished, limits: SandboxLimits) -> tuple[Status, str]:
    name = _signal_name(number)
    if number == signal.SIGXCPU or (
        number == signal.SIGKILL and finished.cpu_seconds >= limits.cpu_seconds
    ):
        return "timeout", (f"stopped after {limits.cpu_seconds} s of CPU time: the CPU-time limit")
    if number == signal.SIGSEGV:
        return "killed", (
            "the code crashed (SIGSEGV), usually a stack overflow from too deep recursion"
        )
    return "killed", f"the code was killed by {name}"


def judge(finished: Finished, limits: SandboxLimits) -> tuple[Status, str | None, int | None]:
    """Status, error and exit code of a finished run."""
    if finished.stopped == "wall":
        wall = _seconds(limits.wall_seconds)
        return "timeout", f"stopped after {wall} s: the wall-time limit", None
    if finished.stopped == "output":
        return (
            "output_limit",
            (f"stopped after {limits.output_bytes:,} bytes of output: the output limit"),
            None,
        )
    report = _report(finished.outcome)
    code = finished.returncode
    if report is not None:
        status = report["status"]
        error = report.get("error")
        error = None if error is None else sanitize(str(error))
        if status == "memory":
            error = f"out of memory: the {limits.memory_mb} MB memory limit\n{error}"
        if status not in ("ok", "error", "memory", "sandbox_error"):
            status, error = "sandbox_error", f"unknown outcome {status!r} from the sandbox"
        exit_code = report.get("exit_code")
        return status, error, exit_code if isinstance(exit_code, int) else None
    if code < 0:
        return (*_killed(-code, finished, limits), None)
    if code > SIGNAL_EXIT_BASE:
        return (*_killed(code - SIGNAL_EXIT_BASE, finished, limits), None)
    if code == 0:
        return "ok", None, 0
    return "error", f"exited with status {code}", code
