"""Which isolation layers hold on this machine, found by running a probe in the sandbox.

Nothing is assumed from configuration: a probe runs inside each isolation method (with the
audit hook off, so only the kernel's layers are measured) and reports what it can see and
do.  The result is cached for the life of the process.
"""

from __future__ import annotations

import functools
import json
import os
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from thinkchain.sandbox import seccomp
from thinkchain.sandbox.cgroup import PREFIX, available
from thinkchain.sandbox.commands import Method, bwrap_path, is_root, unshare_command
from thinkchain.sandbox.launch import (
    TEMP_PREFIX,
    SandboxUnavailable,
    fallback_drops_uid,
    launch,
    run_memory_mb,
)
from thinkchain.sandbox.layout import package_dirs
from thinkchain.sandbox.limits import SandboxLimits
from thinkchain.sandbox.process import Cancel

Choice = Literal["auto", "bwrap", "fallback"]
# Layers a run needs unless require_isolation is switched off.
REQUIRED = ("network", "filesystem", "processes")
NAMESPACES = ("net", "pid", "mnt", "ipc", "uts", "user")
SAMPLES_PER_FOLDER = 5

PROBE = """
import json, os, resource
def readable(path):
    try:
        with open(path, "rb") as fh:
            return bool(fh.read(1))
    except OSError:
        return False
def shown(path):
    try:
        with open(path, "rb") as fh:
            return %(marker)r.encode() in fh.read()
    except OSError:
        return False
def memfd():
    try:
        os.close(os.memfd_create("probe"))
        return True
    except (OSError, AttributeError):
        return False
status = {}
for line in open("/proc/self/status"):
    key, _, value = line.partition(":")
    status[key] = value.strip()
names = {}
for ns in %(namespaces)r:
    try:
        names[ns] = os.readlink("/proc/self/ns/" + ns)
    except OSError:
        names[ns] = None
print(json.dumps({
    "uid": os.getuid(),
    "interfaces": [line.split(":")[0].strip() for line in open("/proc/self/net/dev")][2:],
    "seen": [p for p in %(samples)r if os.path.lexists(p)],
    "namespaces": names,
    "seccomp": status.get("Seccomp"),
    "no_new_privs": status.get("NoNewPrivs"),
    "cap_eff": status.get("CapEff"),
    "nproc": resource.getrlimit(resource.RLIMIT_NPROC)[0],
    "cgroup": any(%(cgroup)r in line for line in open("/proc/self/cgroup")),
    "packages": [p for p in %(packages)r if os.path.isdir(p) and os.listdir(p)],
    "kernel": [p for p in ("/proc/cmdline", "/proc/config.gz") if readable(p)],
    "host_paths": [p for p in ("/proc/1/cmdline", "/proc/self/mountinfo") if shown(p)],
    "ptys": os.path.exists("/dev/ptmx") or os.path.exists("/dev/pts/ptmx"),
    "memfd": memfd(),
}))
"""


@dataclass(frozen=True)
class Layer:
    name: str
    holds: bool
    detail: str  # what it stops, or why it does not hold here
    required: bool = False  # without it, require_isolation refuses to run code


@dataclass(frozen=True)
class IsolationReport:
    method: Method
    layers: tuple[Layer, ...]

    @property
    def works(self) -> bool:
        """The method starts code on this machine at all."""
        return self.layers[0].name != "start"

    @property
    def safe(self) -> bool:
        """Every required layer holds: the code cannot reach the network or the user's files."""
        return all(layer.holds for layer in self.layers if layer.required)

    @property
    def problems(self) -> tuple[str, ...]:
        return tuple(f"{x.name}: {x.detail}" for x in self.layers if x.required and not x.holds)

    def layer(self, name: str) -> Layer:
        return next(layer for layer in self.layers if layer.name == name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "safe": self.safe,
            "layers": [asdict(x) for x in self.layers],
        }

    def __str__(self) -> str:
        head = f"sandbox isolation ({self.method}): {'safe' if self.safe else 'NOT SAFE'}"
        rows = [f"  {'yes' if x.holds else 'NO ':3}  {x.name:<13} {x.detail}" for x in self.layers]
        return "\n".join([head, *rows])


def protected_folders() -> tuple[str, ...]:
    """Folders sandboxed code must never see: home, thinkchain's data and models, the project."""
    from thinkchain.folders import cache_dir, data_dir

    folders = [Path.home(), data_dir(), cache_dir(), Path.cwd(), Path("/root"), Path("/home")]
    # "/" (a service's home or working folder) is not a user folder: its system entries are
    # meant to be visible, read-only.
    return tuple(dict.fromkeys(str(p) for p in folders if str(p) != "/"))


def _samples() -> list[str]:
    """A few real entries of each protected folder, for the probe to look for."""
    from thinkchain.sandbox.layout import interpreter

    shown = interpreter().binds()
    samples: list[str] = []
    for folder in protected_folders():
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)[:50]
        except OSError:
            continue
        picked = [
            e.path
            for e in entries
            if not any(p == e.path or p.startswith(e.path + "/") for p in shown)
        ]
        samples += picked[:SAMPLES_PER_FOLDER]
    return samples


def _probe(method: Method) -> tuple[dict[str, Any] | None, str]:
    code = PROBE % {
        "namespaces": NAMESPACES,
        "samples": _samples(),
        "marker": TEMP_PREFIX,  # in the name of the run's folder on the host
        "cgroup": PREFIX,
        "packages": package_dirs(),
    }
    limits = SandboxLimits(require_isolation=False, wall_seconds=30, output_chars=1_000_000)
    try:
        run = launch(code, limits, method, audit_hook=False, cancel=Cancel())
    except (SandboxUnavailable, OSError) as exc:
        return None, str(exc)
    try:
        return json.loads(run.finished.output), ""
    except ValueError:
        said = (run.finished.outcome or run.finished.output.encode()).decode(errors="replace")
        lines = said.strip().splitlines()[-1:] or ["no output"]
        return None, f"the probe failed ({run.finished.returncode}): {lines[0][-300:]}"


def _host_namespaces() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for ns in NAMESPACES:
        try:
            found[ns] = os.readlink(f"/proc/self/ns/{ns}")
        except OSError:
            found[ns] = None
    return found


def _layers(method: Method, probe: dict[str, Any] | None, why: str) -> tuple[Layer, ...]:
    if probe is None:
        failed = f"the probe could not run: {why}"
        return (
            Layer("start", False, failed, required=True),
            *(Layer(name, False, failed, required=True) for name in REQUIRED),
        )
    host = _host_namespaces()
    own = [ns for ns in NAMESPACES if probe["namespaces"].get(ns) not in (None, host[ns])]
    interfaces = probe["interfaces"]
    seen = probe["seen"]
    uid = probe["uid"]
    layers = [
        Layer("process", True, "own process and session, scrubbed environment, temp folder"),
        _start_layer(method),
        Layer(
            "namespaces",
            {"net", "pid", "mnt"} <= set(own),
            f"own {', '.join(own) or 'none'}"
            + ("" if "pid" in own else "; without a pid namespace a process may outlive a run"),
        ),
        Layer(
            "network",
            set(interfaces) <= {"lo"},
            "only loopback: no way out"
            if set(interfaces) <= {"lo"}
            else f"the host's network is reachable ({', '.join(interfaces)})",
            required=True,
        ),
        Layer(
            "filesystem",
            not seen,
            "home, thinkchain's data and models, the project: none visible"
            if not seen
            else f"{len(seen)} protected paths visible, e.g. {seen[0]}",
            required=True,
        ),
        Layer(
            "processes",
            uid != 0,
            (f"a fresh unprivileged uid per run (here {uid})" if is_root() else f"uid {uid}")
            + ": the process limit holds"
            if uid != 0
            else "runs as root, which the process limit does not bind",
            required=True,
        ),
        Layer("rlimits", True, "CPU time, address space, file size, open files, no core files"),
        _memory_layer(probe),
        _host_view_layer(probe),
        _seccomp_layer(method, probe),
        Layer(
            "capabilities",
            probe["cap_eff"] == "0000000000000000" and probe["no_new_privs"] == "1",
            f"effective {probe['cap_eff']}, no_new_privs {probe['no_new_privs']}",
        ),
        Layer(
            "landlock",
            False,
            "not used: Python 3.11 has no Landlock call without ctypes (which code here must "
            "not have); bubblewrap's mount namespace hides the files instead",
        ),
        Layer(
            "audit hook",
            True,
            "refuses sockets, processes, ctypes, files outside the run (defence in depth)",
        ),
    ]
    return tuple(layers)


def _start_layer(method: Method) -> Layer:
    if method == "bwrap":
        return Layer("bubblewrap", True, f"{bwrap_path()}: namespaces and a private mount tree")
    command = unshare_command()
    drop = "drops to its own uid" if fallback_drops_uid() else "cannot drop root"
    if command is None:
        return Layer("bubblewrap", False, "not installed or not working; no unshare either")
    extra = (
        ""
        if not is_root() or fallback_drops_uid()
        else (" (the interpreter is not readable by an unprivileged uid)")
    )
    return Layer("bubblewrap", False, f"not used: the unshare fallback, which {drop}{extra}")


def _memory_layer(probe: dict[str, Any]) -> Layer:
    hierarchy, why = available()
    if probe["cgroup"]:
        default = run_memory_mb(SandboxLimits())
        return Layer(
            "memory cgroup",
            True,
            f"one per run ({why}): its processes, shared memory and files together at most "
            f"memory_mb + disk_mb + headroom ({default} MB by default)",
        )
    instead = (
        "memfd and SysV shared memory are refused by seccomp instead"
        if probe["seccomp"] == "2" and not probe["memfd"]
        else "memfd files and shared memory are bounded only by file_mb per file"
    )
    reason = why if hierarchy is None else "the run did not join its cgroup"
    return Layer(
        "memory cgroup",
        False,
        f"{reason}; each process is held to memory_mb of address space and {instead}",
    )


def _host_view_layer(probe: dict[str, Any]) -> Layer:
    seen = [f"site-packages ({p})" for p in probe["packages"]]
    seen += [f"the host's {p}" for p in probe["kernel"]]
    seen += [f"host paths in {p}" for p in probe["host_paths"]]
    seen += ["the host's pty pool"] if probe["ptys"] else []
    if not seen:
        return Layer(
            "host view",
            True,
            "no site-packages, no host path in /proc, the kernel's command line and "
            "configuration hidden, no pty pool or /dev/shm",
        )
    return Layer("host view", False, "visible: " + ", ".join(seen))


def _seccomp_layer(method: Method, probe: dict[str, Any]) -> Layer:
    if probe["seccomp"] == "2":
        return Layer(
            "seccomp",
            True,
            "namespaces, ptrace, keyrings, bpf, io_uring, memfd and SysV shared memory refused",
        )
    if method != "bwrap":
        return Layer("seccomp", False, "only with bubblewrap (it loads the filter)")
    if not seccomp.supported():
        return Layer("seccomp", False, "no filter for this architecture")
    return Layer("seccomp", False, "the filter did not load")


_probing = threading.Lock()


def _report(method: Method) -> IsolationReport:
    with _probing:  # concurrent first runs wait for one probe instead of each running one
        return _cached_report(method)


@functools.lru_cache(maxsize=4)
def _cached_report(method: Method) -> IsolationReport:
    if method == "bwrap" and bwrap_path() is None:
        probe, why = None, "bubblewrap (bwrap) is not installed: apt-get install bubblewrap"
    else:
        probe, why = _probe(method)
    return IsolationReport(method, _layers(method, probe, why))


def isolation_report(method: Choice = "auto") -> IsolationReport:
    """Which layers hold on this machine, for ``method`` ("auto": bubblewrap when it works)."""
    if method != "auto":
        return _report(method)
    bwrap = _report("bwrap")
    return bwrap if bwrap.works else _report("fallback")
