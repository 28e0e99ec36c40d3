"""One child process, watched from start to end: output read as it comes, limits kept, and
everything it started killed before the result is handed back."""

from __future__ import annotations

import os
import selectors
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import Literal

from thinkchain.sandbox.output import OutputCapture
from thinkchain.sandbox.reaper import kill_group, wait_group_gone

READ_CHUNK = 65536
RESULT_BYTES = 65536  # the bootstrap's outcome is one short JSON line
DRAIN_SECONDS = 1.0  # after the child exits: how long its pipes may stay open
POLL_SECONDS = 0.02  # only where pidfd_open is missing

Stop = Literal["wall", "output", "cancel"]


@dataclass(frozen=True)
class Finished:
    """What the host saw of one child process."""

    output: str
    truncated: bool
    outcome: bytes  # what the bootstrap wrote to the result pipe
    returncode: int  # negative: killed by that signal
    cpu_seconds: float  # of the child and every descendant it waited for
    stopped: Stop | None  # the host stopped it, and why


class Cancel:
    """Lets another thread stop a run; kills the process group at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._reaped = False
        self.cancelled = False

    def attach(self, proc: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._proc = proc
            if self.cancelled:
                kill_group(proc.pid)

    def cancel(self) -> None:
        with self._lock:
            self.cancelled = True
            if self._proc is not None and not self._reaped:
                kill_group(self._proc.pid)

    def reap(self, proc: subprocess.Popen[bytes]) -> tuple[int, float]:
        """Waits for the (killed) child; its pid may then be reused, so no cancel signals it."""
        with self._lock:
            self._reaped = True
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        return proc.returncode, usage.ru_utime + usage.ru_stime


def _exited(pid: int) -> bool:
    """Whether the child has exited, without reaping it (its pid stays ours to signal)."""
    found = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    return found is not None


def watch(
    argv: list[str],
    *,
    env: dict[str, str],
    cwd: str,
    pass_fds: tuple[int, ...],
    result_fd: int,
    wall_seconds: float,
    output_bytes: int,
    output_chars: int,
    cancel: Cancel,
) -> Finished:
    """Runs ``argv`` in a new session and watches it until it ends or a limit stops it.

    ``result_fd`` is the read end of the result pipe whose write end is in ``pass_fds``;
    this function owns them and every other fd in ``pass_fds``, and closes them all.
    """
    deadline = time.monotonic() + wall_seconds
    out_r, out_w = os.pipe()
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out_w,
            stderr=out_w,
            env=env,
            cwd=cwd,
            pass_fds=pass_fds,
            start_new_session=True,
        )
    except BaseException:
        os.close(out_r)
        os.close(result_fd)
        raise
    finally:
        os.close(out_w)
        for fd in pass_fds:
            os.close(fd)
    cancel.attach(proc)
    capture = OutputCapture(output_chars)
    outcome = bytearray()
    stopped: Stop | None = None
    try:
        pidfd: int | None = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        pidfd = None
    with selectors.DefaultSelector() as selector:
        for watched in (out_r, result_fd, pidfd):
            if watched is not None:
                selector.register(watched, selectors.EVENT_READ)
        exited_at: float | None = None
        try:
            while True:
                now = time.monotonic()
                if cancel.cancelled:
                    stopped = "cancel"
                    break
                if exited_at is None and now >= deadline:
                    stopped = "wall"
                    break
                if exited_at is not None and (
                    now >= exited_at + DRAIN_SECONDS or len(selector.get_map()) == 0
                ):
                    break
                wait = (deadline if exited_at is None else exited_at + DRAIN_SECONDS) - now
                if pidfd is None:
                    wait = min(wait, POLL_SECONDS)
                for key, _ in selector.select(max(wait, 0)):
                    fd = int(key.fd)
                    if fd == pidfd:
                        selector.unregister(fd)
                        continue
                    data = os.read(fd, READ_CHUNK)
                    if not data:
                        selector.unregister(fd)
                    elif fd == out_r:
                        capture.feed(data)
                    elif len(outcome) < RESULT_BYTES:
                        outcome += data
                if exited_at is None and (pidfd is None or pidfd not in selector.get_map()):
                    if pidfd is not None or _exited(proc.pid):
                        exited_at = time.monotonic()
                        kill_group(proc.pid)  # anything the code left behind in its group
                if capture.bytes > output_bytes:
                    stopped = "output"
                    break
        finally:
            kill_group(proc.pid)
            returncode, cpu = cancel.reap(proc)
            wait_group_gone(proc.pid)
            for opened in (out_r, result_fd, pidfd):
                if opened is not None:
                    os.close(opened)
    text, truncated = capture.result()
    return Finished(text, truncated, bytes(outcome), returncode, cpu, stopped)
