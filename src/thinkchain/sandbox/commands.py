"""The command lines that start sandboxed code: bubblewrap, the unshare fallback, the child."""

from __future__ import annotations

import functools
import os
import pwd
import random
import shutil
import subprocess
import threading
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from thinkchain.sandbox.layout import (
    DEVICES,
    SYSTEM_DIRS,
    SYSTEM_FILES,
    interpreter,
    package_dirs,
    proc_hidden,
)

Method = Literal["bwrap", "fallback"]

# Inside bubblewrap: the working folder (a sized tmpfs).
WORK_INSIDE = "/tmp"
# The links a /dev has (bubblewrap's --dev makes them too), beside the DEVICES bound in.
DEV_LINKS = (
    ("/proc/self/fd", "/dev/fd"),
    ("/proc/self/fd/0", "/dev/stdin"),
    ("/proc/self/fd/1", "/dev/stdout"),
    ("/proc/self/fd/2", "/dev/stderr"),
)
# Each run gets its own uid from this range, unused by any account, so its process limit
# counts only its own processes and no run can signal another or read what another writes.
UID_BASE = 0x3A000000
UID_SPAN = 0x01000000
# Namespaces the fallback asks util-linux's unshare for (root needs no user namespace).
UNSHARE_FLAGS = ("--net", "--pid", "--fork", "--kill-child", "--mount", "--mount-proc")
UNSHARE_MORE = ("--ipc", "--uts")
# The first process of a pid namespace ignores signals it has no handler for, the CPU
# limit's SIGXCPU among them: a shell stays first and runs the interpreter as its child.
INIT = ("/bin/sh", "-c", '"$@"; exit $?', "sandbox-init")
PYTHON_FLAGS = ("-I", "-S", "-B", "-u", "-X", "utf8")


def is_root() -> bool:
    return os.geteuid() == 0


_uids_in_use: set[int] = set()
_uids_lock = threading.Lock()


def pick_uid() -> int:
    """A uid no account uses and no other run of this process holds; release it after."""
    while True:
        uid = UID_BASE + random.randrange(UID_SPAN)
        try:
            pwd.getpwuid(uid)
            continue
        except KeyError:
            pass
        with _uids_lock:
            if uid not in _uids_in_use:
                _uids_in_use.add(uid)
                return uid


def release_uid(uid: int) -> None:
    with _uids_lock:
        _uids_in_use.discard(uid)


def environment(workdir: str) -> dict[str, str]:
    """The child's whole environment: nothing of the host's (no keys, no home, no caches)."""
    return {
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "HOME": workdir,
        "TMPDIR": workdir,
        "USER": "sandbox",
        "LOGNAME": "sandbox",
    }


def bwrap_path() -> str | None:
    return shutil.which("bwrap", path="/usr/bin:/bin:/usr/local/bin")


@functools.lru_cache(maxsize=4)
def bwrap_options(bwrap: str) -> frozenset[str]:
    """The options this bubblewrap knows (older ones lack --size and --disable-userns)."""
    try:
        done = subprocess.run([bwrap, "--help"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return frozenset()
    return frozenset(w for w in (done.stdout + done.stderr).split() if w.startswith("--"))


def _make_dirs(dest: str, made: set[str]) -> list[str]:
    """Create a bind's parent folders world-readable (bubblewrap would make them 0700)."""
    args: list[str] = []
    for parent in reversed(PurePosixPath(dest).parents):
        text = str(parent)
        if text != "/" and text not in made:
            made.add(text)
            args += ["--perms", "0755", "--dir", text]
    return args


def bwrap_arguments(bwrap: str, disk_mb: int, seccomp_fd: int | None, root: bool) -> list[str]:
    """bubblewrap's options: every namespace, no capabilities, only the interpreter visible.

    They go to bubblewrap through a descriptor (``--args``), not its command line: its first
    process is the sandbox's pid 1, whose command line the code can read.
    """
    known = bwrap_options(bwrap)
    args = ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts"]
    args += ["--unshare-cgroup-try", "--hostname", "sandbox"]
    if root:
        # Root keeps the host's uid 0 in a user namespace; the child drops to its own uid
        # instead, which needs these two capabilities until it has (and then has none).
        args += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:
        args += ["--unshare-user", "--cap-drop", "ALL"]
        if "--disable-userns" in known:
            args.append("--disable-userns")  # else the seccomp filter refuses new namespaces
    args += ["--die-with-parent", "--new-session"]
    for path in SYSTEM_DIRS:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    for path in SYSTEM_FILES:
        args += ["--ro-bind-try", path, path]
    made: set[str] = set()
    python = interpreter()
    for path in python.binds():
        args += _make_dirs(path, made)
        args += ["--ro-bind", os.path.realpath(path), path]
    # Folders covered by an empty tmpfs: the packages beside the standard library (the
    # standard library only), /proc/sys, and a /dev of the plain devices alone (no pty pool
    # of the host's: bubblewrap's --dev mounts a devpts, and every pty opened there counts
    # against the kernel-wide pty limit; no /dev/shm).  As root they belong to root, mode
    # 0555, which the run's own uid cannot write; in a user namespace they would belong to
    # the code's uid, so they are made read-only (each remount costs bubblewrap time).
    files, folders = proc_hidden()
    covered = [*package_dirs(), *folders]
    for path in package_dirs():
        args += ["--perms", "0555", "--tmpfs", path]
    args += ["--proc", "/proc"]
    for path in files:
        args += ["--ro-bind", "/dev/null", path]  # on a nodev mount: reading it is refused
    for path in folders:
        args += ["--perms", "0555", "--tmpfs", path]
    args += ["--perms", "0755", "--tmpfs", "/dev"]
    for device in DEVICES:
        args += ["--dev-bind", device, device]
    for target, link in DEV_LINKS:
        args += ["--symlink", target, link]
    if "--size" in known:  # without it only the per-file limit bounds what the code writes
        args += ["--size", str(disk_mb * 1024 * 1024)]
    args += ["--perms", "1777", "--tmpfs", WORK_INSIDE]
    if seccomp_fd is not None:
        args += ["--seccomp", str(seccomp_fd)]
    if not root:
        for path in (*covered, "/dev"):
            args += ["--remount-ro", path]
    args += ["--remount-ro", "/", "--chdir", WORK_INSIDE]
    return args


def bwrap_command(bwrap: str, args_fd: int) -> list[str]:
    """bubblewrap's own command line: nothing but where its options are."""
    return [bwrap, "--args", str(args_fd), "--"]


@functools.lru_cache(maxsize=1)
def unshare_command() -> tuple[str, ...] | None:
    """util-linux's unshare with the namespaces this machine grants, or None."""
    unshare = shutil.which("unshare", path="/usr/bin:/bin")
    if unshare is None:
        return None
    user = () if is_root() else ("--user", "--map-current-user")
    for extra in (UNSHARE_MORE, ()):
        command = (unshare, *user, *UNSHARE_FLAGS, *extra, "--", *INIT)
        try:
            done = subprocess.run([*command, "/bin/true"], capture_output=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if done.returncode == 0:
            return command
    return None


@functools.lru_cache(maxsize=1)
def fallback_command() -> tuple[str, ...]:
    """The fallback's prefix: die with the host (setpriv), then the namespaces (unshare)."""
    setpriv = shutil.which("setpriv", path="/usr/bin:/bin")
    # bubblewrap has --die-with-parent; here the parent-death signal keeps a crashed host
    # from leaving the code running (setpriv sets it, and it survives into unshare).
    orphan_guard = (setpriv, "--pdeathsig", "KILL", "--") if setpriv else ()
    return (*orphan_guard, *(unshare_command() or ()))


_HOOK_MARKER = "# -- the audit hook: audit_hook.py's text goes here (commands.bootstrap_source) --"


@functools.lru_cache(maxsize=1)
def bootstrap_source() -> str:
    """The bootstrap with the audit hook's code in it, one script (read once per process)."""
    here = Path(__file__).parent
    bootstrap = (here / "bootstrap.py").read_text(encoding="utf-8")
    hook = (here / "audit_hook.py").read_text(encoding="utf-8")
    # The hook's body, after its own header (docstring, imports): the bootstrap has those.
    body = hook[hook.index("# Events refused whatever their arguments") :]
    if _HOOK_MARKER not in bootstrap:
        raise RuntimeError("the bootstrap has lost its audit hook marker")
    return bootstrap.replace(_HOOK_MARKER, body, 1)


def python_command(config: dict[str, Any]) -> list[str]:
    """The sandboxed interpreter: isolated mode, no site-packages, the bootstrap, its config.

    The config goes as a Python literal: the bootstrap reads it without importing json.
    """
    return [interpreter().executable, *PYTHON_FLAGS, "-c", bootstrap_source(), repr(config)]
