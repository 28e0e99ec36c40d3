"""From what the host saw of a run to its status and a sentence a small model can act on."""

from __future__ import annotations

import json
import signal
from typing import Any

from thinkchain.sandbox.launch import run_memory_mb
from thinkchain.sandbox.limits import SandboxLimits
from thinkchain.sandbox.process import Finished
from thinkchain.sandbox.result import Status

# bubblewrap reports a child killed by signal N as exit status 128 + N.
SIGNAL_EXIT_BASE = 128
# The bootstrap's exit status when the sandbox could not be set up (bootstrap.SETUP_FAILED).
SETUP_FAILED = 70
# What the outcome line may say: anything else is not the bootstrap's.
REPORTED = ("ok", "error", "memory", "sandbox_error")
EXIT_CODES = range(-(2**31), 2**31)


def _seconds(value: float) -> str:
    return f"{value:g}"


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _report(raw: bytes) -> dict[str, Any] | None:
    """The bootstrap's outcome line, or None when the code never let it write a sound one.

    The code can write to this pipe too, so the line is read as hostile input: any failure to
    parse it (deep nesting makes json raise RecursionError, a long number ValueError) and any
    field of the wrong type or value count as no outcome, and the exit status decides.
    """
    try:
        data = json.loads(raw.decode("utf-8").strip().splitlines()[0])
    except Exception:  # whatever the bytes are, this must not raise
        return None
    if not isinstance(data, dict) or data.get("status") not in REPORTED:
        return None
    error, exit_code = data.get("error"), data.get("exit_code")
    if not (error is None or isinstance(error, str)):
        return None
    if type(exit_code) is not int or exit_code not in EXIT_CODES:
        exit_code = None
    return {"status": data["status"], "error": error, "exit_code": exit_code}


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


def judge(
    finished: Finished, limits: SandboxLimits, oom: bool = False
) -> tuple[Status, str | None, int | None]:
    """Status, error and exit code of a finished run.

    ``oom``: the run's memory cgroup killed a process of it (its processes, shared memory and
    files together reached the cgroup's limit).
    """
    if finished.stopped == "wall":
        wall = _seconds(limits.wall_seconds)
        return "timeout", f"stopped after {wall} s: the wall-time limit", None
    if finished.stopped == "output":
        return (
            "output_limit",
            (f"stopped after {limits.output_bytes:,} bytes of output: the output limit"),
            None,
        )
    if oom:
        return "memory", (f"out of memory: the run's {run_memory_mb(limits)} MB memory limit"), None
    report = _report(finished.outcome)
    code = finished.returncode
    if report is not None:
        status = report["status"]
        error = report["error"]
        if status == "sandbox_error" and code != SETUP_FAILED:
            # Only the bootstrap's set-up, before any code ran, reports this (and exits 70).
            status = "error"
        if status == "memory":
            error = f"out of memory: the {limits.memory_mb} MB memory limit\n{error}"
        return status, error, report["exit_code"]
    if code < 0:
        return (*_killed(-code, finished, limits), None)
    if code > SIGNAL_EXIT_BASE:
        return (*_killed(code - SIGNAL_EXIT_BASE, finished, limits), None)
    if code == 0:
        return "ok", None, 0
    return "error", f"exited with status {code}", code
