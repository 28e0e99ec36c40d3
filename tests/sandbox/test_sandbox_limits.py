"""Bad code is stopped by its limits, and the host is unchanged and responsive afterwards."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from thinkchain.sandbox import isolation_report

from .helpers import make_sandbox, sandbox_processes


def test_endless_loop_stops_at_the_cpu_limit(method: str) -> None:
    result = make_sandbox(method, cpu_seconds=1, wall_seconds=20).run("while True:\n    pass")
    assert result.status == "timeout"
    assert result.error == "stopped after 1 s of CPU time: the CPU-time limit"
    assert result.exit_code is None


def test_sleeping_code_stops_at_the_wall_limit(method: str) -> None:
    code = "import time\nprint('started')\ntime.sleep(60)"
    result = make_sandbox(method, wall_seconds=1.0).run(code)
    assert result.status == "timeout"
    assert result.error == "stopped after 1 s: the wall-time limit"
    assert result.output == "started\n"  # what it printed before the limit is kept
    assert result.seconds >= 1.0


def test_wall_limit_kills_what_the_code_left_running(method: str) -> None:
    code = (
        "import threading, time\n"
        "threading.Thread(target=time.sleep, args=(60,)).start()\n"
        "while True:\n"
        "    time.sleep(0.1)\n"
    )
    result = make_sandbox(method, wall_seconds=0.5).run(code)
    assert result.status == "timeout"
    # The autouse fixture checks that no process of the run is left on the host.


def test_background_process_dies_with_the_run(bwrap: str) -> None:
    code = (
        "import subprocess\n"
        "subprocess.Popen(['sleep', '60'], start_new_session=True)\n"
        "print('left a process behind')\n"
    )
    result = make_sandbox(bwrap, audit_hook=False).run(code)
    assert result.output == "left a process behind\n"
    # The autouse fixture checks that the sleep did not outlive the run.


@pytest.mark.parametrize(
    "code",
    [
        "x = bytearray(10**10)",
        "chunks = []\nwhile True:\n    chunks.append(b'x' * 10**6)",
        "s = 'a' * (300 * 2**20)",
    ],
)
def test_memory_bomb_stops_at_the_memory_limit(method: str, code: str) -> None:
    before = psutil.virtual_memory().available
    result = make_sandbox(method, memory_mb=128).run(code)
    assert result.status == "memory"
    assert result.error is not None
    assert result.error.startswith("out of memory: the 128 MB memory limit")
    assert "MemoryError" in result.error
    assert psutil.virtual_memory().available > before - 512 * 2**20


def test_fork_bomb_is_refused_by_the_hook(method: str) -> None:
    code = "import os\nwhile True:\n    os.fork()"
    result = make_sandbox(method).run(code)
    assert result.status == "error"
    assert result.error is not None
    assert "cannot start processes" in result.error


def test_fork_bomb_stops_at_the_process_limit_without_the_hook(method: str) -> None:
    if not isolation_report(method).layer("processes").holds:  # type: ignore[arg-type]
        pytest.skip("runs as root here: the kernel's process limit would not hold")
    code = (
        "import os, time\n"
        "children = 0\n"
        "while True:\n"
        "    try:\n"
        "        pid = os.fork()\n"
        "    except OSError as exc:\n"
        "        print('refused after', children, exc.strerror)\n"
        "        break\n"
        "    if pid == 0:\n"
        "        time.sleep(30)\n"
        "        os._exit(0)\n"
        "    children += 1\n"
    )
    result = make_sandbox(method, processes=8, audit_hook=False).run(code)
    assert result.ok, result
    refused = int(result.output.split()[2])
    assert refused < 8
    # Every fork was killed with the run: the autouse fixture finds none left on the host.


def test_threads_are_limited_too(method: str) -> None:
    code = (
        "import threading, time\n"
        "started = 0\n"
        "try:\n"
        "    for _ in range(100):\n"
        "        threading.Thread(target=time.sleep, args=(5,), daemon=True).start()\n"
        "        started += 1\n"
        "except RuntimeError as exc:\n"
        "    print('stopped at', started, exc)\n"
    )
    if not isolation_report(method).layer("processes").holds:  # type: ignore[arg-type]
        pytest.skip("runs as root here: the kernel's process limit would not hold")
    result = make_sandbox(method, processes=8).run(code)
    assert result.output.startswith("stopped at ")
    assert int(result.output.split()[2]) < 8


def test_huge_output_is_cut_and_the_code_stopped(method: str) -> None:
    code = "import sys\nfor _ in range(1600):\n    sys.stdout.write('y' * 65536)\n"  # 100 MB
    result = make_sandbox(method, wall_seconds=60, output_bytes=500_000).run(code)
    assert result.status == "output_limit"
    assert result.error == "stopped after 500,000 bytes of output: the output limit"
    assert result.truncated
    assert len(result.output) <= 4000
    assert "characters cut" in result.output
    assert result.output.startswith("yyyy")


def test_long_output_under_the_read_limit_is_cut_but_the_run_ok(method: str) -> None:
    code = "for i in range(5000):\n    print('line', i)\nprint('the end')"
    result = make_sandbox(method, output_chars=500).run(code)
    assert result.ok
    assert result.truncated
    assert len(result.output) <= 500
    assert result.output.startswith("line 0\nline 1\n")
    assert result.output.endswith("line 4999\nthe end\n")


def test_deep_recursion_is_an_error(method: str) -> None:
    result = make_sandbox(method).run("def f(n):\n    return f(n + 1)\nf(0)")
    assert result.status == "error"
    assert result.error is not None
    assert result.error.splitlines()[-1].startswith("RecursionError")


def test_deep_recursion_past_the_recursion_limit_is_stopped(method: str) -> None:
    code = "import sys\nsys.setrecursionlimit(10**8)\ndef f(n):\n    return f(n + 1) + 1\nf(0)"
    result = make_sandbox(method, memory_mb=64, cpu_seconds=1, wall_seconds=20).run(code)
    assert result.status in ("memory", "timeout", "killed"), result
    assert result.error


def test_a_crash_is_reported_as_killed(method: str) -> None:
    result = make_sandbox(method).run("import faulthandler\nfaulthandler._sigsegv()")
    assert result.status == "killed"
    assert result.error == (
        "the code crashed (SIGSEGV), usually a stack overflow from too deep recursion"
    )
    assert result.exit_code is None


def test_a_kill_from_inside_is_reported_as_killed(method: str) -> None:
    result = make_sandbox(method, audit_hook=False).run("import os\nos.kill(os.getpid(), 9)")
    assert result.status == "killed"
    assert result.error == "the code was killed by SIGKILL"


def test_huge_file_stops_at_the_file_limit(method: str) -> None:
    code = "with open('big', 'wb') as fh:\n    fh.write(b'x' * (5 * 2**20))"
    result = make_sandbox(method, file_mb=2).run(code)
    assert result.status == "error"
    assert result.error is not None
    assert "File too large" in result.error


def test_many_files_stop_at_the_disk_limit(bwrap: str) -> None:
    code = (
        "for i in range(20):\n"
        "    with open(f'part{i}', 'wb') as fh:\n"
        "        fh.write(b'x' * (2 * 2**20))\n"
    )
    result = make_sandbox(bwrap, file_mb=4, disk_mb=8).run(code)
    assert result.status == "error"
    assert result.error is not None
    assert "No space left on device" in result.error


def test_temporary_folder_is_removed(method: str, own_tempdir: Path) -> None:
    code = (
        "import os\n"
        "open('note.txt', 'w').write('hello')\n"
        "os.mkdir('sub')\n"
        "print(sorted(os.listdir('.')))\n"
    )
    result = make_sandbox(method).run(code)
    assert result.output == "['note.txt', 'sub']\n"
    assert list(own_tempdir.iterdir()) == []


def test_temporary_folder_is_removed_after_a_timeout(method: str, own_tempdir: Path) -> None:
    code = "open('note.txt', 'w').write('hello')\nimport time\ntime.sleep(60)"
    result = make_sandbox(method, wall_seconds=0.5).run(code)
    assert result.status == "timeout"
    assert list(own_tempdir.iterdir()) == []


def test_each_run_starts_in_a_fresh_folder(method: str) -> None:
    sandbox = make_sandbox(method)
    sandbox.run("open('left.txt', 'w').write('from the first run')")
    second = sandbox.run("import os\nsorted(os.listdir('.'))")
    assert second.output == "[]\n"


def test_host_is_responsive_after_bad_code(method: str) -> None:
    sandbox = make_sandbox(method, wall_seconds=0.5)
    for code in ("while True: pass", "x = bytearray(10**10)", "import os\nwhile True: os.fork()"):
        sandbox.run(code)
    assert make_sandbox(method).run("print(6 * 7)").output == "42\n"


HOST = """
import sys
from thinkchain.sandbox import Sandbox, SandboxLimits
limits = SandboxLimits(require_isolation=False, wall_seconds=300)
sandbox = Sandbox(limits, method=sys.argv[1])
sandbox.isolation  # the probe runs first: only the code's own process is then left to start
print("ready", flush=True)
sandbox.run("import time\\ntime.sleep(300)")
"""


def wait_for(condition, what: str, seconds: float = 30) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_code_dies_with_a_crashed_host(method: str, runs_folder: Path) -> None:
    env = {**os.environ, "TMPDIR": str(runs_folder)}  # where the leftover search looks
    host = subprocess.Popen(
        [sys.executable, "-c", HOST, method], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert host.stdout is not None
        assert host.stdout.readline() == "ready\n"
        wait_for(lambda: sandbox_processes(), "the code to start")
        time.sleep(0.2)  # past the start: the code is sleeping now
        assert sandbox_processes()
        host.kill()  # SIGKILL: the host gets no chance to clean up
        host.wait()
        wait_for(lambda: not sandbox_processes(), "the code to die with its host")
    finally:
        host.kill()
        host.wait()
