"""Helpers of the sandbox tests: both isolation methods with small limits, leftover search."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import psutil

from thinkchain.sandbox import Sandbox, SandboxLimits, isolation_report
from thinkchain.sandbox.cgroup import PREFIX

NO_BWRAP = (
    "bubblewrap does not run here (apt-get install bubblewrap; it needs root or user "
    "namespaces): the fallback tests still run"
)
# Small limits keep the tests fast; require_isolation is off only for the fallback, which
# cannot be fully isolated on every machine (its own tests check what it reports).
SMALL = {"wall_seconds": 8.0, "cpu_seconds": 2, "output_bytes": 200_000}


def bwrap_works() -> bool:
    return isolation_report("bwrap").works


def make_sandbox(method: str, *, audit_hook: bool = True, **limits: object) -> Sandbox:
    settings = {**SMALL, "require_isolation": method == "bwrap", **limits}
    return Sandbox(SandboxLimits(**settings), method=method, audit_hook=audit_hook)  # type: ignore[arg-type]


# Every sandbox folder of this test session lies under this one (set by the conftest), so
# the leftover search finds this session's runs and never another session's on the machine.
RUNS: list[str] = []


def sandbox_processes() -> list[psutil.Process]:
    """Processes of this session's runs still alive: those started in or working on a run's
    folder (the bubblewrap that started the code runs there; its command line names no host
    path, so the code cannot read one; the fallback's unshare and interpreter name it), those
    in a run's memory cgroup, and everything below them."""
    marker = RUNS[0] + "/"
    found: dict[int, psutil.Process] = {}
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if proc.pid == os.getpid():
                continue
            if (
                marker in " ".join(proc.info["cmdline"] or [])
                or _works_in(proc, marker)
                or _in_a_runs_cgroup(proc.pid)
            ):
                found[proc.pid] = proc
                for child in proc.children(recursive=True):
                    found[child.pid] = child
        except (psutil.Error, TypeError):
            continue
    return [p for p in found.values() if _alive(p)]


def _in_a_runs_cgroup(pid: int) -> bool:
    """In the memory cgroup of one of this process's runs (which the code cannot leave)."""
    mine = f"/{PREFIX}{os.getpid()}-"
    try:
        with open(f"/proc/{pid}/cgroup") as fh:
            return mine in fh.read()
    except OSError:
        return False


def _works_in(proc: psutil.Process, marker: str) -> bool:
    try:
        return (proc.cwd() + "/").startswith(marker)
    except psutil.Error:
        return False


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def make_secret(folder: Path, name: str, text: str) -> Iterator[Path]:
    """A file in a real folder (created if missing, removed afterwards with what it made)."""
    made = [p for p in (folder, *folder.parents) if not p.exists()]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)
        for created in made:
            shutil.rmtree(created, ignore_errors=True)
