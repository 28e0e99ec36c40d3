"""One run of code in a fresh temporary folder, by bubblewrap or by the fallback."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from thinkchain.sandbox import seccomp
from thinkchain.sandbox.cgroup import RunCgroup, available
from thinkchain.sandbox.commands import (
    WORK_INSIDE,
    Method,
    bwrap_arguments,
    bwrap_command,
    bwrap_path,
    environment,
    fallback_command,
    is_root,
    pick_uid,
    python_command,
    release_uid,
)
from thinkchain.sandbox.layout import interpreter, readable_by_anyone
from thinkchain.sandbox.limits import SandboxLimits
from thinkchain.sandbox.process import Cancel, Finished, watch
from thinkchain.sandbox.reaper import kill_uid

OPEN_FILES = 256  # enough for any script; a leak of descriptors stays inside the run
TEMP_PREFIX = "thinkchain-sandbox-"
MB = 1024 * 1024
# Beyond memory_mb and disk_mb, what the run's memory cgroup allows for: the kernel's memory
# of its processes (page tables, stacks, pipe buffers) and the interpreter's own start.
CGROUP_HEADROOM_MB = 64


@dataclass(frozen=True)
class Launched:
    finished: Finished
    method: Method
    uid: int | None  # the run's own uid, when it dropped to one
    oom: bool = False  # the kernel killed a process of the run at its memory cgroup's limit


class SandboxUnavailable(Exception):
    """The chosen isolation cannot start on this machine.  The message is for people."""


def fallback_drops_uid() -> bool:
    """The fallback can drop root only when an unprivileged uid can read the interpreter."""
    if not is_root():
        return False
    python = interpreter()
    return all(readable_by_anyone(path) for path in python.binds() if os.path.exists(path))


def run_memory_mb(limits: SandboxLimits) -> int:
    """The memory cgroup's limit for one run: the code's memory, its files, some headroom."""
    return limits.memory_mb + limits.disk_mb + CGROUP_HEADROOM_MB


def rlimits(limits: SandboxLimits) -> dict[str, Any]:
    return {
        # The soft limit sends SIGXCPU; a second later the hard one kills.
        "RLIMIT_CPU": [limits.cpu_seconds, limits.cpu_seconds + 1],
        "RLIMIT_AS": limits.memory_mb * MB,
        "RLIMIT_NPROC": limits.processes,
        "RLIMIT_FSIZE": limits.file_mb * MB,
        "RLIMIT_NOFILE": OPEN_FILES,
        "RLIMIT_CORE": 0,  # no core files on the host's disk
    }


def _data_fd(data: bytes) -> int:
    """A descriptor to read ``data`` from: an anonymous memory file, at its start."""
    fd = os.memfd_create("thinkchain-sandbox", os.MFD_CLOEXEC)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.lseek(fd, 0, os.SEEK_SET)
    except BaseException:
        os.close(fd)
        raise
    return fd


def launch(
    code: str,
    limits: SandboxLimits,
    method: Method,
    *,
    audit_hook: bool,
    cancel: Cancel,
) -> Launched:
    """Runs ``code`` once under ``limits``; the temporary folder is gone when this returns.

    The code reaches the child through a descriptor, not a file: no host path names it.
    """
    temp = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX))
    uid: int | None = None
    cgroup: RunCgroup | None = None
    opened: list[int] = []  # descriptors for the child; closed here once it has them
    try:
        if method == "bwrap":
            bwrap = bwrap_path()
            if bwrap is None:
                raise SandboxUnavailable("bubblewrap (bwrap) is not installed")
            uid = pick_uid() if is_root() else None
            workdir = WORK_INSIDE
        else:
            uid = pick_uid() if fallback_drops_uid() else None
            work = temp / "work"
            work.mkdir(mode=0o700)
            if uid is not None:
                temp.chmod(0o711)
                os.chown(work, uid, uid)
            workdir = str(work)
        hierarchy, _ = available()
        if hierarchy is not None:
            try:
                cgroup = RunCgroup.make(hierarchy, run_memory_mb(limits) * MB)
            except OSError as exc:
                raise SandboxUnavailable(f"the run's memory cgroup: {exc}") from exc
        python = interpreter()
        code_fd = _data_fd(code.encode("utf-8", errors="surrogatepass"))
        opened.append(code_fd)
        cgroup_fd = None if cgroup is None else cgroup.hand_over()
        if cgroup_fd is not None:
            opened.append(cgroup_fd)
        seccomp_fd = None
        if method == "bwrap" and seccomp.supported():
            seccomp_fd = _seccomp_fd()
            opened.append(seccomp_fd)
        result_r, result_w = os.pipe()
        opened += [result_r, result_w]
        config: dict[str, Any] = {
            "uid": uid,
            "workdir": workdir,
            "code_fd": code_fd,
            "cgroup_fd": cgroup_fd,
            "result_fd": result_w,
            "rlimits": rlimits(limits),
            "audit": audit_hook,
            "read": list(python.readable()),
            "write": [workdir],
        }
        if method == "bwrap":
            options = bwrap_arguments(str(bwrap), limits.disk_mb, seccomp_fd, is_root())
            args_fd = _data_fd(b"".join(arg.encode() + b"\0" for arg in options))
            opened.append(args_fd)
            outer = bwrap_command(str(bwrap), args_fd)
        else:
            outer = list(fallback_command())
        argv = outer + python_command(config)
        handed = tuple(fd for fd in opened if fd != result_r)
        opened.clear()  # watch owns every descriptor from here and closes them all
        finished = watch(
            argv,
            env=environment(workdir),
            cwd=str(temp),
            pass_fds=handed,
            result_fd=result_r,
            wall_seconds=limits.wall_seconds,
            output_bytes=limits.output_bytes,
            output_chars=limits.output_chars,
            cancel=cancel,
        )
        oom = cgroup is not None and cgroup.oom_killed()
        return Launched(finished, method, uid, oom)
    finally:
        for fd in opened:
            os.close(fd)
        if cgroup is not None:
            cgroup.remove()  # kills what is left in it first: no process of the run escapes it
        if uid is not None:
            if cgroup is None:  # else the cgroup held every process of the run's uid
                kill_uid(uid)  # nothing of the run may outlive it, even outside its group
            release_uid(uid)
        shutil.rmtree(temp, ignore_errors=True)


def _seccomp_fd() -> int:
    """A pipe holding the filter; bubblewrap reads it to the end."""
    program = seccomp.program()
    read_end, write_end = os.pipe()
    try:
        os.write(write_end, program)  # far below a pipe's buffer: never blocks
    finally:
        os.close(write_end)
    return read_end
