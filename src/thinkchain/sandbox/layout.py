"""Where the sandboxed interpreter lives, and the few host paths it must see to start."""

from __future__ import annotations

import functools
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

_ASK = (
    "import json, sys, sysconfig; v = sysconfig.get_config_var; "
    "print(json.dumps({'path': sys.path, 'shared': v('Py_ENABLE_SHARED'), "
    "'libdir': v('LIBDIR'), 'soname': v('INSTSONAME')}))"
)


@dataclass(frozen=True)
class Interpreter:
    """The base interpreter the sandbox runs, and the files it needs to run."""

    executable: str  # a real path: the sandbox runs exactly this file
    stdlib: tuple[str, ...]  # its import path under -I -S: the standard library only
    library: str | None  # libpython, when the interpreter links it from outside /usr

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
    return Interpreter(exe, stdlib, library)


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
