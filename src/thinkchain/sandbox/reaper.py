"""Finding and killing whatever a run left behind, by process group and by uid.

Only living processes count: a zombie has already died, and the host's init reaps it in its
own time (some inits take a while).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator

GROUP_EXIT_SECONDS = 2.0  # a killed group is gone in milliseconds; a stuck one is not awaited
SWEEPS = 20  # passes of the uid sweep (a process forking during one pass is caught in the next)


def kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _living() -> Iterator[tuple[int, int, int]]:
    """(pid, process group, real uid) of every process that is not a zombie."""
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/status", "rb") as fh:
                status = fh.read()
        except OSError:
            continue
        fields = dict(line.split(b":", 1) for line in status.split(b"\n") if b":" in line)
        if fields.get(b"State", b"").strip().startswith(b"Z"):
            continue
        try:
            uid = int(fields[b"Uid"].split()[0])
            pgid = int(fields.get(b"NSpgid", b"-1").split()[0])
        except (KeyError, ValueError, IndexError):
            continue
        yield int(entry.name), pgid, uid


def wait_group_gone(pgid: int, seconds: float = GROUP_EXIT_SECONDS) -> None:
    """Waits until no living process is left in the group.

    The pid namespace's first process is not our child, but it stays in our group, and the
    kernel kills everything else in its namespace before it dies itself.
    """
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return  # the usual case: the group is empty, zombies included
        if not any(group == pgid for _, group, _ in _living()):
            return
        time.sleep(0.002)


def kill_uid(uid: int) -> None:
    """Kills every living process running as this run's own uid (the sweep after each run)."""
    for _ in range(SWEEPS):
        found = [pid for pid, _, owner in _living() if owner == uid]
        if not found:
            return
        for pid in found:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.01)
