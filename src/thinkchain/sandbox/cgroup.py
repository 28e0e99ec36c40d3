"""Each run's own memory cgroup: all its processes, shared memory and files under one limit.

Address-space limits (``RLIMIT_AS``) bound each process's mappings, but not memory held
outside them: memfd files and SysV segments written and unmapped, tmpfs files and their
inodes, pipe buffers, the sum over a run's processes.  The kernel charges all of that to the
memory cgroup of the process that made it, so a cgroup per run bounds the run as a whole,
and when it is full the kernel's out-of-memory killer stops a process of that run only.

A cgroup can be made where the host process may write to its own memory cgroup's folder
(root, with cgroup v1's memory hierarchy or a cgroup v2 that delegates the memory
controller).  The host makes the folder and opens the file that moves a process into it;
the bootstrap, first thing, writes itself into it through that descriptor, so every process
the code starts is inside.  Elsewhere ``available()`` says why not, and the isolation
report shows it.
"""

from __future__ import annotations

import contextlib
import functools
import os
import secrets
import signal
import subprocess
import time
from dataclasses import dataclass

PREFIX = "thinkchain-sandbox-"
KILL_SECONDS = 2.0  # killed processes leave their cgroup in milliseconds


@dataclass(frozen=True)
class Hierarchy:
    """Where this process makes its runs' cgroups, and the files of that cgroup version."""

    folder: str  # this process's own memory cgroup
    version: int  # 1 or 2

    @property
    def limit_files(self) -> tuple[str, ...]:
        """Written with the limit in this order (v1 refuses memsw below the memory limit)."""
        if self.version == 1:
            return ("memory.limit_in_bytes", "memory.memsw.limit_in_bytes")
        return ("memory.max",)

    @property
    def join_file(self) -> str:
        """What the child writes "0" (itself) to.  v1's ``tasks`` moves one thread, which
        skips the kernel's global threadgroup lock and the RCU grace period it waits for
        (about 10 ms a run); the bootstrap is a single thread when it joins."""
        return "tasks" if self.version == 1 else "cgroup.procs"

    @property
    def events_file(self) -> str:
        return "memory.oom_control" if self.version == 1 else "memory.events"


def _own_cgroups() -> dict[str, str]:
    """This process's cgroup per controller ("" for cgroup v2's unified hierarchy)."""
    found: dict[str, str] = {}
    with open("/proc/self/cgroup", encoding="utf-8") as fh:
        for line in fh:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            for name in controllers.split(","):
                found[name] = path
    return found


def _mounts() -> list[tuple[str, str, set[str]]]:
    """(mount point, filesystem type, super options) of every cgroup filesystem."""
    found = []
    with open("/proc/self/mountinfo", encoding="utf-8") as fh:
        for line in fh:
            fields = line.split()
            after = fields.index("-")
            fstype, options = fields[after + 1], set(fields[after + 3].split(","))
            if fstype in ("cgroup", "cgroup2"):
                found.append((fields[4], fstype, options))
    return found


def _find() -> Hierarchy:
    """This process's memory cgroup, where it may make cgroups; OSError says why not."""
    own = _own_cgroups()
    mounts = _mounts()
    v1 = next((point for point, fs, opts in mounts if fs == "cgroup" and "memory" in opts), None)
    if v1 is not None and "memory" in own:
        hierarchy = Hierarchy(os.path.join(v1, own["memory"].lstrip("/")), 1)
    else:
        v2 = next((point for point, fs, _ in mounts if fs == "cgroup2"), None)
        if v2 is None or "" not in own:
            raise OSError("no memory cgroup hierarchy is mounted")
        folder = os.path.join(v2, own[""].lstrip("/"))
        with open(os.path.join(folder, "cgroup.subtree_control"), encoding="utf-8") as fh:
            if "memory" not in fh.read().split():
                raise OSError(f"cgroup v2 does not delegate the memory controller to {folder}")
        hierarchy = Hierarchy(folder, 2)
    if not os.access(hierarchy.folder, os.W_OK):
        raise OSError(f"{hierarchy.folder} is not writable by this process")
    return hierarchy


@functools.lru_cache(maxsize=1)
def available() -> tuple[Hierarchy | None, str]:
    """Where runs' memory cgroups are made, or None and the reason (for people)."""
    try:
        hierarchy = _find()
        _sweep_stale(hierarchy)
        _try_joining(hierarchy)
    except (OSError, ValueError, IndexError, KeyError, subprocess.SubprocessError) as exc:
        return None, f"no memory cgroup can be made here: {exc}"
    return hierarchy, f"cgroup v{hierarchy.version} under {hierarchy.folder}"


def _try_joining(hierarchy: Hierarchy) -> None:
    """Makes a trial cgroup and has a child join it as the bootstrap will, once per process:
    a machine that lets the host make cgroups but not move a child into one runs without."""
    from thinkchain.sandbox.layout import interpreter

    trial = RunCgroup.make(hierarchy, 64 * 1024 * 1024)
    try:
        fd = trial.hand_over()
        try:
            join = f"import os; os.write({fd}, b'0'); print(open('/proc/self/cgroup').read())"
            done = subprocess.run(
                [interpreter().executable, "-I", "-S", "-c", join],
                pass_fds=(fd,),
                capture_output=True,
                text=True,
                timeout=30,
            )
        finally:
            os.close(fd)
        if done.returncode != 0 or os.path.basename(trial.folder) not in done.stdout:
            said = (done.stderr.strip().splitlines() or ["it is not in the cgroup"])[-1]
            raise OSError(f"a child cannot join one: {said}")
    finally:
        trial.remove()


def _sweep_stale(hierarchy: Hierarchy) -> None:
    """Removes the cgroups of runs whose host died before it could remove them."""
    for entry in os.scandir(hierarchy.folder):
        owner = entry.name[len(PREFIX) :].split("-")[0]
        if not entry.name.startswith(PREFIX) or not owner.isdigit():
            continue
        try:
            os.kill(int(owner), 0)
            continue  # its host lives: its runs are its own
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        RunCgroup(hierarchy, entry.path, None).remove()


class RunCgroup:
    """One run's memory cgroup: made before the run, emptied and removed after it."""

    def __init__(self, hierarchy: Hierarchy, folder: str, procs_fd: int | None) -> None:
        self.hierarchy = hierarchy
        self.folder = folder
        self.procs_fd = procs_fd  # join_file, open for writing: the child joins through it

    @classmethod
    def make(cls, hierarchy: Hierarchy, limit_bytes: int) -> RunCgroup:
        name = f"{PREFIX}{os.getpid()}-{secrets.token_hex(6)}"
        folder = os.path.join(hierarchy.folder, name)
        os.mkdir(folder)
        made = cls(hierarchy, folder, None)
        try:
            for file in hierarchy.limit_files:
                path = os.path.join(folder, file)
                if os.path.exists(path):  # memsw only where swap is accounted
                    _write(path, str(limit_bytes))
            if hierarchy.version == 2:
                _write(os.path.join(folder, "memory.swap.max"), "0", missing_ok=True)
                _write(os.path.join(folder, "memory.oom.group"), "1", missing_ok=True)
            made.procs_fd = os.open(os.path.join(folder, hierarchy.join_file), os.O_WRONLY)
        except BaseException:
            made.remove()
            raise
        return made

    def hand_over(self) -> int:
        """The open join file, for the child; the caller closes it from now on."""
        fd = self.procs_fd
        if fd is None:
            raise OSError("the cgroup's join file is not open")
        self.procs_fd = None
        return fd

    def oom_killed(self) -> bool:
        """Whether the kernel killed a process of this run for the cgroup's limit."""
        try:
            with open(os.path.join(self.folder, self.hierarchy.events_file)) as fh:
                for line in fh:
                    key, _, value = line.partition(" ")
                    if key == "oom_kill" and int(value) > 0:
                        return True
        except (OSError, ValueError):
            pass
        return False

    def _members(self) -> list[int]:
        try:
            with open(os.path.join(self.folder, "cgroup.procs")) as fh:
                return [int(line) for line in fh if line.strip()]
        except (OSError, ValueError):
            return []

    def kill(self) -> None:
        """Kills every process still in the run's cgroup (they cannot leave it)."""
        deadline = time.monotonic() + KILL_SECONDS
        while (members := self._members()) and time.monotonic() < deadline:
            for pid in members:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.002)

    def remove(self) -> None:
        if self.procs_fd is not None:
            os.close(self.procs_fd)
            self.procs_fd = None
        self.kill()
        deadline = time.monotonic() + KILL_SECONDS
        while True:
            try:
                os.rmdir(self.folder)
                return
            except FileNotFoundError:
                return
            except OSError:  # EBUSY: a killed process is still leaving
                if time.monotonic() >= deadline:
                    return  # left for the next host's sweep of stale cgroups
                time.sleep(0.005)


def _write(path: str, value: str, *, missing_ok: bool = False) -> None:
    try:
        with open(path, "w") as fh:
            fh.write(value)
    except FileNotFoundError:
        if not missing_ok:
            raise
