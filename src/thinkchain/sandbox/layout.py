"""Where the sandboxed interpreter lives, and the few host paths it must see to start."""

from __future__ import annotations

import functools
import glob
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

# System folders bubblewrap shows read-only: the C library and what the interpreter links.
SYSTEM_DIRS = ("/usr", "/lib", "/lib32", "/lib64", "/libx32")
# Files the sandbox also shows read-only when the host has them (dynamic linker cache, zone).
SYSTEM_FILES = ("/etc/ld.so.cache", "/etc/localtime")
# Besides the interpreter and the working folder, what the audit hook lets the code read.
DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")
TIMEZONES = ("/usr/share/zoneinfo", "/etc/localtime")

# Where Python packages live beside the standard library, under the folders the sandbox
# shows: each is covered by an empty read-only folder (the standard library only).
PACKAGE_GLOBS = tuple(
    f"{base}/python3*/{kind}"
    for base in ("/usr/lib", "/usr/lib64", "/usr/local/lib", "/usr/local/lib64", "/lib", "/lib64")
    for kind in ("site-packages", "dist-packages")
)
# What /proc shows of the host rather than of the run, and that names or identifies it: the
# kernel's command line (where a VM's secrets or a boot path may be) and build configuration,
# the host's modules, swap files and the tasks of every CPU.  Each is covered (reading it is
# refused), and /proc/sys (the host's sysctls: its boot id, core pattern, hostname's domain)
# is emptied.  The rest of /proc's host-wide files (CPU, memory and disk statistics) stay:
# every mount costs bubblewrap time on each run, and they name no path or secret.
PROC_HIDDEN_FILES = ("cmdline", "config.gz", "bootconfig", "modules", "swaps", "sched_debug")
PROC_HIDDEN_DIRS = ("sys",)

_ASK = (
    "import json, sys, sysconfig; v = sysconfig.get_config_var; "
    "print(json.dumps({'path': sys.path, 'shared': v('Py_ENABLE_SHARED'), "
    "'libdir': v('LIBDIR'), 'soname': v('INSTSONAME'), "
    "'packages': [sysconfig.get_path('purelib'), sysconfig.get_path('platlib')]}))"
)


@dataclass(frozen=True)
class Interpreter:
    """The base interpreter the sandbox runs, and the files it needs to run."""

    executable: str  # a real path: the sandbox runs exactly this file
    stdlib: tuple[str, ...]  # its import path under -I -S: the standard library only
    library: str | None  # libpython, when the interpreter links it from outside /usr
    packages: tuple[str, ...] = ()  # its site-packages folders (real paths, where they exist)

    def binds(self) -> tuple[str, ...]:
        """Host paths outside the system folders that the sandbox must show read-only."""
        paths = (self.executable, *self.stdlib, *((self.library,) if self.library else ()))
        return tuple(p for p in dict.fromkeys(paths) if not under(p, SYSTEM_DIRS))

    def readable(self) -> tuple[str, ...]:
        """What the audit hook lets the code read besides its working folder."""
        return (self.executable, *self.stdlib, *DEVICES, *TIMEZONES)


def under(path: str, roots: tuple[str, ...]) -> bool:
    return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)


def base_executable() -> str:
    """The interpreter under this one's virtual environment (no site-packages there)."""
    return os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)


@functools.lru_cache(maxsize=1)
def interpreter() -> Interpreter:
    """Asks the base interpreter, started as the sandbox starts it, what it imports from."""
    exe = base_executable()
    done = subprocess.run(
        [exe, "-I", "-S", "-c", _ASK],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
        timeout=60,
        check=True,
    )
    facts = json.loads(done.stdout)
    stdlib = tuple(os.path.realpath(p) for p in facts["path"] if p and os.path.exists(p))
    library = None
    if facts["shared"] and facts["libdir"] and facts["soname"]:
        candidate = Path(facts["libdir"], facts["soname"])
        if candidate.exists():
            library = str(candidate)  # the name the loader looks up, not its symlink target
    packages = tuple(
        dict.fromkeys(os.path.realpath(p) for p in facts["packages"] if p and os.path.isdir(p))
    )
    return Interpreter(exe, stdlib, library, packages)


@functools.lru_cache(maxsize=1)
def package_dirs() -> tuple[str, ...]:
    """Folders of Python packages the sandbox's mounts would show, to be covered.

    The interpreter's own site-packages lie inside its standard library's folder, the
    system's (Debian's dist-packages, /usr/local's) inside /usr; all are hidden, so the
    code cannot put them on sys.path and import numpy or a C-calling backend.
    """
    python = interpreter()
    found = [*python.packages]
    for root in python.stdlib:
        found += [os.path.join(root, kind) for kind in ("site-packages", "dist-packages")]
    for pattern in PACKAGE_GLOBS:
        found += glob.glob(pattern)
    shown = (*SYSTEM_DIRS, *python.binds())
    real = (os.path.realpath(p) for p in found if os.path.isdir(p))
    return tuple(sorted(p for p in dict.fromkeys(real) if under(p, shown)))


def proc_hidden() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The files and folders of /proc to cover, of those this kernel has."""
    files = tuple(f"/proc/{n}" for n in PROC_HIDDEN_FILES if os.path.exists(f"/proc/{n}"))
    dirs = tuple(f"/proc/{n}" for n in PROC_HIDDEN_DIRS if os.path.isdir(f"/proc/{n}"))
    return files, dirs


def readable_by_anyone(path: str) -> bool:
    """Whether an unprivileged uid can reach and read this path (every folder above it open)."""
    current = Path(path)
    try:
        if not os.stat(current).st_mode & 0o004:
            return False
        for parent in current.parents:
            if not os.stat(parent).st_mode & 0o001:
                return False
    except OSError:
        return False
    return True
