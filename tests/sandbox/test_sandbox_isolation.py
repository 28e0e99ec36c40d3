"""The isolation report tells the truth, and a machine that cannot isolate refuses to run."""

from __future__ import annotations

import os
import platform

import pytest

from thinkchain.sandbox import Sandbox, SandboxLimits, isolation_report

from .helpers import make_sandbox

LAYERS = {
    "process",
    "bubblewrap",
    "namespaces",
    "network",
    "filesystem",
    "processes",
    "rlimits",
    "memory cgroup",
    "host view",
    "seccomp",
    "capabilities",
    "landlock",
    "audit hook",
}


def test_report_names_every_layer_with_a_reason(method: str) -> None:
    report = isolation_report(method)  # type: ignore[arg-type]
    assert report.method == method
    assert {layer.name for layer in report.layers} == LAYERS
    assert all(layer.detail for layer in report.layers)
    text = str(report)
    for layer in report.layers:
        assert layer.name in text
    assert report.to_dict()["safe"] == report.safe
    assert {x.name for x in report.layers if x.required} == {"network", "filesystem", "processes"}


def test_bubblewrap_holds_every_required_layer(bwrap: str) -> None:
    report = isolation_report("bwrap")
    assert report.safe, str(report)
    assert report.layer("namespaces").holds
    assert report.layer("capabilities").holds
    assert isolation_report() is report  # auto picks bubblewrap where it works
    assert Sandbox().isolation.method == "bwrap"


def test_report_is_honest_about_the_files(method: str) -> None:
    """The filesystem layer holds exactly when code without the hook cannot see the home."""
    if len(os.listdir("/root")) <= 1 and not os.listdir("/home"):
        pytest.skip("nothing in /root or /home to look for")
    report = isolation_report(method)  # type: ignore[arg-type]
    code = (
        "import os\n"
        "try:\n"
        "    print(len(os.listdir('/root')) > 1 or len(os.listdir('/home')) > 0)\n"
        "except OSError:\n"
        "    print(False)\n"
    )
    result = make_sandbox(method, audit_hook=False, require_isolation=False).run(code)
    visible = result.output.strip() == "True"
    assert visible != report.layer("filesystem").holds


def test_report_is_honest_about_the_uid(method: str) -> None:
    report = isolation_report(method)  # type: ignore[arg-type]
    result = make_sandbox(method, audit_hook=False, require_isolation=False).run(
        "import os\nos.getuid()"
    )
    assert (int(result.output) != 0) == report.layer("processes").holds


def test_an_unsafe_method_refuses_to_run_by_default() -> None:
    report = isolation_report("fallback")
    if report.safe:
        pytest.skip("the fallback is fully isolated on this machine")
    result = Sandbox(method="fallback").run("print('should not run')")
    assert result.status == "sandbox_error"
    assert result.output == ""
    assert result.exit_code is None
    assert result.error is not None
    assert "refused to run" in result.error
    assert "bubblewrap" in result.error
    assert report.problems[0].split(":")[0] in result.error


def test_an_unsafe_method_runs_when_the_user_accepts_it() -> None:
    sandbox = Sandbox(SandboxLimits(require_isolation=False), method="fallback")
    assert sandbox.run("print('ran')").output == "ran\n"


@pytest.mark.skipif(platform.machine() != "x86_64", reason="the seccomp filter is x86_64 only")
def test_seccomp_refuses_new_namespaces_and_odd_sockets(bwrap: str) -> None:
    assert isolation_report("bwrap").layer("seccomp").holds
    code = (
        "import subprocess, socket\n"
        "done = subprocess.run(['/usr/bin/unshare', '--user', '--net', 'true'],"
        " capture_output=True, text=True)\n"
        "print('unshare exit', done.returncode)\n"
        "try:\n"
        "    socket.socket(socket.AF_NETLINK, socket.SOCK_RAW)\n"
        "    print('netlink open')\n"
        "except OSError as exc:\n"
        "    print('netlink refused', exc.errno)\n"
        "socket.socket(socket.AF_UNIX).close()\n"
        "print('unix ok')\n"
    )
    result = make_sandbox(bwrap, audit_hook=False).run(code)
    lines = result.output.splitlines()
    assert lines[0] != "unshare exit 0"
    assert lines[1] == "netlink refused 97"  # EAFNOSUPPORT
    assert lines[2] == "unix ok"


def test_seccomp_leaves_threads_and_processes_working(bwrap: str) -> None:
    """clone3 is refused with ENOSYS, so the C library falls back to clone, which works."""
    code = (
        "import threading, subprocess\n"
        "box = []\n"
        "t = threading.Thread(target=box.append, args=(1,))\n"
        "t.start(); t.join()\n"
        "print(box, subprocess.run(['/usr/bin/echo', 'hi'], capture_output=True).stdout)\n"
    )
    result = make_sandbox(bwrap, audit_hook=False).run(code)
    assert result.output == "[1] b'hi\\n'\n"
