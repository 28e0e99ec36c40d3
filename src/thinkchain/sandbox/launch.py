"""One run of code in a fresh temporary folder, by bubblewrap or by the fallback."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import seccomp
from .commands import (
    CODE_INSIDE,
    WORK_INSIDE,
    Method,
    bwrap_command,
    bwrap_path,
    environment,
    fallback_command,
    is_root,
    pick_uid,
    python_command,
    release_uid,
)
from .layout import interpreter, readable_by_anyone
from .limits import SandboxLimits
from .process import Cancel, Finished, watch
from .reaper import kill_uid

OPEN_FILES = 256  # enough for any script; a leak of descriptors stays inside the run
TEMP_PREFIX = "thinkchain-sandbox-"


@dataclass(frozen=True)
class Launched:
    finished: Finished
    method: Method
    uid: int | None  # the run's own uid, when it dropped to one


class SandboxUnavailable(Exception):
    """The chosen isolation cannot start on this machine.  The message is for people."""


def fallback_drops_uid() -> bool:
    """The fallback can drop root only when an unprivileged uid can read the interpreter."""
    if not is_root():
        return False
    python = interpreter()
    return all(readable_by_anyone(path) for path in python.binds() if os.path.exists(path))


def rlimits(limits: SandboxLimits) -> dict[str, Any]:
    mb = 1024 * 1024
    return {
        # The soft limit sends SIGXCPU; a second later the hard one kills.
        "RLIMIT_CPU": [limits.cpu_seconds, limits.cpu_seconds + 1],
        "RLIMIT_AS": limits.memory_mb * mb,
        "RLIMIT_NPROC": limits.processes,
        "RLIMIT_FSIZE": limits.file_mb * mb,
        "RLIMIT_NOFILE": OPEN_FILES,
        "RLIMIT_CORE": 0,  # no core files on the host's disk
    }


def launch(
    code: str,
    limits: SandboxLimits,
    method: Method,
    *,
    audit_hook: bool,
    cancel: Cancel,
) -> Launched:
    """Runs ``code`` once under ``limits``; the temporary folder is gone when this returns."""
    temp = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX))
    uid: int | None = None
    try:
        code_file = temp / "code.py"
        code_file.write_text(code, encoding="utf-8", errors="surrogatepass")
        code_file.chmod(0o644)
        if method == "bwrap":
            bwrap = bwrap_path()
            if bwrap is None:
                raise SandboxUnavailable("bubblewrap (bwrap) is not installed")
            uid = pick_uid() if is_root() else None
            workdir, code_path = WORK_INSIDE, CODE_INSIDE
        else:
            uid = pick_uid() if fallback_drops_uid() else None
            work = temp / "work"
            work.mkdir(mode=0o700)
            if uid is not None:
                temp.chmod(0o711)
                os.chown(work, uid, uid)
            workdir, code_path = str(work), str(code_file)
        python = interpreter()
        config: dict[str, Any] = {
            "uid": uid,
            "workdir": workdir,
            "code": code_path,
            "rlimits": rlimits(limits),
            "audit": audit_hook,
            "read": [*python.readable(), code_path],
            "write": [workdir],
        }
        result_r, result_w = os.pipe()
        pass_fds = [result_w]
        try:
            config["result_fd"] = result_w
            if method == "bwrap":
                seccomp_fd = _seccomp_fd() if seccomp.supported() else None
                if seccomp_fd is not None:
                    pass_fds.append(seccomp_fd)
                outer = bwrap_command(str(bwrap), code_file, limits.disk_mb, seccomp_fd, is_root())
            else:
                outer = list(fallback_command())
            argv = outer + python_command(config)
        except BaseException:
            for fd in (result_r, *pass_fds):
                os.close(fd)
            raise
        finished = watch(
            argv,
            env=environment(workdir),
            cwd=str(temp),
            pass_fds=tuple(pass_fds),
            result_fd=result_r,
            wall_seconds=limits.wall_seconds,
            output_bytes=limits.output_bytes,
            output_chars=limits.output_chars,
            cancel=cancel,
        )
        return Launched(finished, method, uid)
    finally:
        if uid is not None:
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
