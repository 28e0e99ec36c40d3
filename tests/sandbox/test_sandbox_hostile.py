"""Hostile code: the code is written by an attacker who knows how the sandbox works.

Each test runs a real attack through the real sandbox (or, for the host's parsing, feeds the
host the bytes the attack would write) and shows it failing.  Attacks on a kernel layer run
with the audit hook off, so the layer is shown holding on its own.  Every attack is harmless
to the host even if the sandbox were broken: documentation addresses, writes only under the
test's temporary folders, clocks set to the time they already show.  docs/sandbox.md lists them.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import unicodedata
from pathlib import Path

import pytest

from thinkchain.sandbox import STATUSES, CodeResult, SandboxLimits, isolation_report
from thinkchain.sandbox.cgroup import PREFIX, available
from thinkchain.sandbox.layout import package_dirs
from thinkchain.sandbox.outcome import judge
from thinkchain.sandbox.output import sanitize
from thinkchain.sandbox.process import Finished
from thinkchain.sandbox.result import ERROR_CHARS

from . import helpers
from .helpers import make_sandbox

# The code finds the bootstrap's private result pipe in its own command line.
RESULT_FD = "import os, sys\nfd = eval(sys.argv[1], {'__builtins__': {}})['result_fd']\n"


def forge(line: bytes, then: str = "os._exit(0)") -> str:
    """Code that writes ``line`` to the result pipe before the bootstrap can, then ends."""
    return RESULT_FD + f"os.write(fd, {line!r})\n{then}\n"


def layer_holds(method: str, layer: str) -> bool:
    return isolation_report(method).layer(layer).holds  # type: ignore[arg-type]


def needs_cgroup() -> None:
    """The cgroup tests run wherever the host can make a memory cgroup (root, like CI):
    there the run must be inside it, whatever the isolation report concludes."""
    hierarchy, why = available()
    if hierarchy is None:
        pytest.skip(why)


def needs(method: str, layer: str) -> None:
    if not layer_holds(method, layer):
        why = isolation_report(method).layer(layer).detail  # type: ignore[arg-type]
        pytest.skip(f"the {layer} layer does not hold here: {why}")


# --- 1 and 2: what the code writes to the result pipe ------------------------------------------

HOSTILE_OUTCOMES = {
    "deep list": b"[" * 100_000 + b"\n",
    "deep object": b'{"a": ' * 50_000 + b"\n",
    "huge number": b'{"status": "error", "exit_code": 1' + b"0" * 5000 + b"}\n",
    "invalid utf-8": b"\xff\xfe\xfd" * 1000 + b"\n",
    "status not text": b'{"status": ["ok"], "error": null}\n',
    "error not text": b'{"status": "error", "error": {"nested": [1, 2]}}\n',
    "infinite exit code": b'{"status": "ok", "exit_code": 1e400}\n',
    "bool exit code": b'{"status": "error", "error": "x", "exit_code": true}\n',
    "long error": json.dumps({"status": "error", "error": "x" * 60_000}).encode() + b"\n",
    "long status": json.dumps({"status": "e" * 60_000}).encode() + b"\n",
    "lone surrogate": b'{"status": "error", "error": "\\ud800\\u202e\\u0007", "exit_code": 1}\n',
    "no newline": b'{"status": "ok"',
    "empty": b"",
    "nul bytes": b"\0" * 70_000,
}


@pytest.mark.parametrize("name", list(HOSTILE_OUTCOMES))
def test_the_hosts_parse_of_the_outcome_never_raises(name: str) -> None:
    """Class 1 and 2 at the parse itself: whatever bytes, a status, an error bounded and
    encodable, and an exit code that fits a C int."""
    limits = SandboxLimits()
    for returncode in (0, 1, 70, -9, 137):
        finished = Finished("", False, HOSTILE_OUTCOMES[name], returncode, 0.0, None)
        status, error, exit_code = judge(finished, limits)
        result = CodeResult("", "", status, error, 0.0, False, exit_code)
        assert result.status in STATUSES
        assert result.error is None or len(result.error) <= ERROR_CHARS
        json.dumps(result.to_dict()).encode("utf-8")  # storable, sendable
        assert exit_code is None or -(2**31) <= exit_code < 2**31


def test_deeply_nested_json_on_the_result_pipe_does_not_make_run_raise(method: str) -> None:
    """Class 1: the host's json parse raised RecursionError out of run."""
    result = make_sandbox(method).run(forge(b"[" * 100_000 + b"\n"))
    assert result.status == "ok", result  # judged by the exit status alone
    assert result.error is None


def test_a_forged_error_is_bounded(method: str) -> None:
    """Class 2: a forged outcome's error of 60,000 characters."""
    line = json.dumps({"status": "error", "error": "\u202e" + "x" * 60_000, "exit_code": 1})
    result = make_sandbox(method).run(forge(line.encode() + b"\n", "os._exit(1)"))
    assert result.status == "error"
    assert result.error is not None
    assert len(result.error) <= ERROR_CHARS
    assert "characters cut" in result.error
    assert "\u202e" not in result.error


def test_the_codes_own_long_errors_are_bounded(method: str) -> None:
    sandbox = make_sandbox(method)
    for code in ("raise ValueError('x' * 60_000)", "import sys\nsys.exit('y' * 60_000)"):
        result = sandbox.run(code)
        assert result.status == "error"
        assert result.error is not None
        assert len(result.error) <= ERROR_CHARS


def test_every_result_bounds_its_error_wherever_it_comes_from() -> None:
    """The bound is in CodeResult itself: rows of the history and eval files too."""
    made = CodeResult("x", "", "error", "e" * 100_000, 0.1, False, 1)
    assert made.error is not None
    assert len(made.error) == ERROR_CHARS
    assert made.error.startswith("eeee") and made.error.endswith("eeee")
    row = {**made.to_dict(), "error": "\u2066" + "f" * 50_000, "output": "a\u202eb"}
    loaded = CodeResult.from_dict(row)
    assert loaded.error is not None
    assert len(loaded.error) == ERROR_CHARS
    assert "\u2066" not in loaded.error
    assert loaded.output == "a\\u202eb"
    assert CodeResult.from_dict(loaded.to_dict()) == loaded  # bounding twice changes nothing


def test_a_forged_sandbox_error_is_an_error_of_the_code(method: str) -> None:
    """Only the bootstrap's set-up (which exits 70) reports sandbox_error: a chain stops
    running code after one, so the code must not be able to claim it."""
    line = b'{"status": "sandbox_error", "error": "the sandbox is broken"}\n'
    result = make_sandbox(method).run(forge(line, "os._exit(0)"))
    assert result.status == "error"


def test_the_outcome_printed_on_stdout_is_only_output(method: str) -> None:
    code = 'print(\'{"status": "ok", "error": null, "exit_code": 0}\')\nraise SystemExit(3)'
    result = make_sandbox(method).run(code)
    assert (result.status, result.exit_code) == ("error", 3)


def test_the_result_pipe_closed_twice_written_or_held(method: str) -> None:
    sandbox = make_sandbox(method)
    closed = sandbox.run(RESULT_FD + "os.close(fd)\nprint('done')")
    assert (closed.status, closed.output) == ("ok", "done\n")  # judged by the exit status
    twice = sandbox.run(forge(b'{"status": "ok"}\n{"status": "error"}\n', "1/0"))
    assert twice.status == "ok"  # its own lie about its own run, one line, bounded
    moved = sandbox.run(RESULT_FD + "os.dup2(1, fd)\n1/0")
    assert moved.status == "error"  # the outcome went to stdout: the exit status decides
    held = make_sandbox(method, wall_seconds=1).run(
        forge(b'{"status": "ok"', "import time\ntime.sleep(30)")
    )
    assert held.status == "timeout"
    flood = sandbox.run(RESULT_FD + "os.write(fd, b'x' * 10_000_000)\nprint('after')")
    assert flood.status in ("ok", "timeout")  # the host reads past 64 KiB and drops it


def test_a_forged_exit_code_stays_a_small_int(method: str) -> None:
    sandbox = make_sandbox(method)
    for number in (2**40, -(2**40)):
        line = json.dumps({"status": "error", "error": "x", "exit_code": number}).encode()
        result = sandbox.run(forge(line + b"\n", "os._exit(1)"))
        assert result.exit_code is None
    huge = sandbox.run("import sys\nsys.exit(10**5000)")
    assert huge.status == "error"
    assert huge.exit_code is not None and -(2**31) <= huge.exit_code < 2**31


# --- 3: memory outside the address-space limit ------------------------------------------------

MEMFD = (
    "import os\n"
    "held = 0\n"
    "files = []\n"
    "for _ in range(20):\n"
    "    files.append(os.memfd_create('hold'))\n"
    "    for _ in range(16):\n"
    "        os.write(files[-1], b'x' * 2**20)\n"
    "        held += 1\n"
    "        print('held', held, flush=True)\n"
)
SYSV = (
    "import ctypes\n"
    "libc = ctypes.CDLL(None, use_errno=True)\n"
    "libc.shmat.restype = ctypes.c_void_p\n"
    "held = 0\n"
    "for _ in range(20):\n"
    "    segment = libc.shmget(0, 16 << 20, 0o1600)\n"
    "    if segment < 0:\n"
    "        print('shmget refused', ctypes.get_errno())\n"
    "        break\n"
    "    address = libc.shmat(segment, None, 0)\n"
    "    ctypes.memset(address, 1, 16 << 20)\n"
    "    libc.shmdt(ctypes.c_void_p(address))\n"
    "    held += 16\n"
    "    print('held', held, flush=True)\n"
)


def _held(output: str) -> int:
    counts = [int(line.split()[1]) for line in output.splitlines() if line.startswith("held ")]
    return max(counts, default=0)


def test_memfd_and_sysv_shared_memory_are_refused_by_seccomp(bwrap: str) -> None:
    """Class 3, the seccomp layer: memfd_create and shmget fail with EPERM, however the
    machine's cgroups are."""
    needs(bwrap, "seccomp")
    sandbox = make_sandbox(bwrap, audit_hook=False, memory_mb=64, disk_mb=1)
    memfd = sandbox.run(MEMFD)
    assert memfd.status == "error"
    assert memfd.error is not None and "Operation not permitted" in memfd.error
    assert _held(memfd.output) == 0
    sysv = sandbox.run(SYSV)
    assert sysv.output.strip() == "shmget refused 1"  # EPERM


def test_memory_held_outside_the_address_space_stops_at_the_runs_cgroup(method: str) -> None:
    """Class 3, the cgroup layer: where no seccomp filter refuses memfd (the fallback) the
    run's cgroup stops it at memory_mb + disk_mb + headroom (here 129 MB, not 320)."""
    needs_cgroup()
    sandbox = make_sandbox(method, audit_hook=False, memory_mb=64, disk_mb=1)
    for code in (MEMFD, SYSV):
        result = sandbox.run(code)
        held = _held(result.output)
        assert held < 129, result
        said = f"{result.error}{result.output}"
        if held == 0 and ("Operation not permitted" in said or "refused 1" in said):
            continue  # seccomp refused it at once (bubblewrap)
        assert result.status == "memory", result
        assert result.error == "out of memory: the run's 129 MB memory limit"


def test_forks_each_under_the_memory_limit_stop_at_the_runs_cgroup(method: str) -> None:
    """Each process holds less than memory_mb, but together they hold far more."""
    needs_cgroup()
    code = (
        "import os, time\n"
        "for _ in range(6):\n"
        "    if os.fork() == 0:\n"
        "        block = bytearray(80 << 20)\n"
        "        time.sleep(5)\n"
        "        os._exit(0)\n"
        "held = sum(1 for _ in range(6) if os.wait()[1] == 0)\n"
        "print('held 80 MB to the end:', held)\n"
    )
    limits = {"memory_mb": 128, "disk_mb": 1, "wall_seconds": 60}
    result = make_sandbox(method, audit_hook=False, **limits).run(code)
    assert result.status == "memory", result
    assert int(result.output.split()[-1]) < 6  # the kernel killed some: together, too much


def test_files_by_the_hundred_thousand_stop_at_the_runs_cgroup(bwrap: str) -> None:
    """Empty files cost no disk_mb, but the kernel keeps about 1 KB per inode."""
    needs_cgroup()
    code = "for i in range(2_000_000):\n    open(str(i), 'w').close()\nprint('made them all')"
    # A generous wall limit: on a busy machine the CPU seconds it needs take longer.
    limits = {"memory_mb": 64, "disk_mb": 1, "cpu_seconds": 5, "wall_seconds": 60}
    result = make_sandbox(bwrap, audit_hook=False, **limits).run(code)
    assert result.status in ("memory", "error"), result  # OOM-killed, or ENOMEM / ENOSPC
    assert "made them all" not in result.output


def test_the_report_says_whether_runs_have_a_memory_cgroup(method: str) -> None:
    hierarchy, why = available()
    layer = isolation_report(method).layer("memory cgroup")  # type: ignore[arg-type]
    assert layer.holds == (hierarchy is not None)
    assert why in layer.detail


def test_no_runs_cgroup_outlives_its_run(method: str) -> None:
    hierarchy, _ = available()
    if hierarchy is None:
        pytest.skip("no memory cgroup here")
    make_sandbox(method, wall_seconds=0.5).run("import time\ntime.sleep(10)")
    mine = f"{PREFIX}{os.getpid()}-"
    assert [e for e in os.listdir(hierarchy.folder) if e.startswith(mine)] == []


# --- 4: the audit hook switched off from inside ---------------------------------------------

FIND_HOOK = (
    "import gc, sys\n"
    "hook = [f for f in gc.get_objects() if getattr(f, '__name__', '') == 'hook'][0]\n"
    "boot = sys.modules['__main__']\n"
)
TAMPERS = {
    # The review's attack: blind the hook's own-function check, then empty its refusals.
    "getattr in its module": "boot.getattr = lambda *a: None\n"
    "hook.__defaults__ = tuple(() if type(d) is tuple else d for d in hook.__defaults__)",
    "len in its module": "boot.len = lambda *a: 0\n"
    "hook.__defaults__ = tuple(() if type(d) is tuple else d for d in hook.__defaults__)",
    "builtins": "import builtins\n"
    "builtins.any = lambda *a: False\n"
    "real = builtins.isinstance\n"
    "builtins.isinstance = lambda o, t: True if t is int else real(o, t)",
    "module globals": "for n in ('isinstance', 'any', 'PermissionError', 'ImportError'):\n"
    "    setattr(boot, n, lambda *a, **k: None)",
    "os and posixpath": "import os, posixpath, genericpath\n"
    "os.fspath = lambda p: '/tmp/x'\n"
    "os.fsdecode = lambda p: '/tmp/x'\n"
    "posixpath.realpath = lambda p, **k: '/tmp/x'\n"
    "posixpath._joinrealpath = lambda *a: ('/tmp/x', True)\n"
    "genericpath.isdir = lambda p: False",
    "its globals cleared": "hook.__globals__.clear()",
    "__builtins__ replaced": "boot.__dict__['__builtins__'] = {'print': print}\n"
    "hook.__globals__['__builtins__'] = {}",
    "sys.modules poisoned": "fake = type(sys)('posixpath')\n"
    "fake.realpath = lambda p, **k: '/tmp/x'\n"
    "for name in ('posixpath', 'os.path', 'genericpath', 'stat', '_stat', 'posix'):\n"
    "    sys.modules[name] = fake",
    "its helpers' defaults": "for f in gc.get_objects():\n"
    "    if getattr(f, '__name__', '') in ('_inside', '_checked_path', '_realpath'):\n"
    "        try:\n"
    "            f.__defaults__ = None\n"
    "        except PermissionError:\n"
    "            pass",
    "frames walked": "frame = sys._getframe()\n"
    "while frame is not None:\n"
    "    frame.f_globals.pop('make_hook', None)\n"
    "    frame = frame.f_back",
}
AFTER_TAMPER = (
    "import socket\n"
    "try:\n"
    "    socket.socket()\n"
    "    print('SOCKET OPENED')\n"
    "except PermissionError as exc:\n"
    "    print('socket refused:', exc)\n"
    "try:\n"
    "    open('/etc/passwd').read()\n"
    "    print('PASSWD READ')\n"
    "except PermissionError as exc:\n"
    "    print('read refused:', exc)\n"
    "try:\n"
    "    import ctypes\n"
    "    print('CTYPES IMPORTED')\n"
    "except ImportError as exc:\n"
    "    print('ctypes refused:', exc)\n"
)


@pytest.mark.parametrize("tamper", list(TAMPERS))
def test_the_audit_hook_holds_against_tampering(method: str, tamper: str) -> None:
    """Class 4: the hook looked up builtins through the bootstrap's module, which the code
    can change; now it looks up nothing."""
    body = "\n".join("    " + line for line in TAMPERS[tamper].splitlines())
    code = FIND_HOOK + f"try:\n{body}\nexcept Exception as exc:\n    print('failed', exc)\n"
    result = make_sandbox(method).run(code + AFTER_TAMPER)
    lines = result.output.splitlines()
    assert "socket refused: sandbox: socket.__new__: the sandbox has no network" in lines, result
    assert any(line.startswith("read refused: sandbox: reading") for line in lines), result
    assert any(line.startswith("ctypes refused: sandbox:") for line in lines), result


def test_finalizers_after_the_code_still_meet_the_hook(method: str) -> None:
    """The interpreter drops its audit hooks while it finalizes, before it destroys what the
    codec registry and sys still hold: a __del__ there ran unwatched.  The bootstrap now ends
    the process at once, and the hook stops one that finalizes anyway."""
    late = (
        "import _socket, codecs, os, sys\n"
        "class Late:\n"
        "    def __del__(self, sock=_socket.socket, write=os.write, refused=PermissionError):\n"
        "        try:\n"
        "            sock().close()\n"
        "            write(1, b'socket made after the hook was gone\\n')\n"
        "        except refused:\n"
        "            write(1, b'refused\\n')\n"
        "codecs.register(lambda name, late=Late(): None)\n"
        "sys.late = Late()\n"
        "print('set up')\n"
    )
    # Also where the code makes the bootstrap fail after it ran, so the interpreter finalizes.
    broken = late + "sys.modules['__main__']._finish = None\n"
    for code in (late, broken):
        result = make_sandbox(method).run(code)
        assert "after the hook was gone" not in result.output, result
        assert result.output.startswith("set up\n")


def test_a_refused_extension_cannot_be_loaded_under_another_name(method: str) -> None:
    """Importing _ctypes from its file as 'x._ctypes' passed a check of the first part."""
    code = (
        "import glob, importlib.util, sys\n"
        "files = [f for p in sys.path for f in glob.glob(p + '/_ctypes*.so')]\n"
        "spec = importlib.util.spec_from_file_location('x._ctypes', files[0])\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "print('loaded', module)\n"
    )
    result = make_sandbox(method).run(code)
    assert result.status == "error", result
    assert result.error is not None and "sandbox: the module 'x._ctypes'" in result.error


def test_nothing_refused_is_already_imported_when_the_code_starts(method: str) -> None:
    code = (
        "import sys\n"
        "refused = ('ctypes', '_ctypes', '_posixsubprocess', 'sqlite3', '_sqlite3', 'dbm')\n"
        "sorted(name for name in sys.modules if name.split('.')[0] in refused)\n"
    )
    assert make_sandbox(method).run(code).output == "[]\n"


# --- 5, 6, 7, 9: what the mount tree shows of the host ----------------------------------------


def test_no_site_packages_can_be_put_on_the_path(bwrap: str) -> None:
    """Class 5: the interpreter's and the system's site-packages were mounted (numpy, pip,
    a cffi backend calling libc)."""
    dirs = package_dirs()
    if not dirs:
        pytest.skip("this machine has no site-packages to hide")
    names = {}
    for folder in dirs:
        found = sorted(
            e.name.split(".")[0]
            for e in os.scandir(folder)
            if e.name.isidentifier() or e.name.endswith(".so")
        )
        if found:
            names[folder] = found[0]
    assert names, "the host's package folders should have something in them"
    code = (
        "import importlib, os, sys\n"
        f"for folder, name in {sorted(names.items())!r}:\n"
        "    sys.path.append(folder)\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "        print('IMPORTED', name, 'from', folder)\n"
        "    except ImportError:\n"
        "        print('none', os.listdir(folder) if os.path.isdir(folder) else 'missing')\n"
    )
    result = make_sandbox(bwrap, audit_hook=False).run(code)
    assert result.output.splitlines() == ["none []"] * len(names), result


def test_no_host_path_in_proc(bwrap: str) -> None:
    """Class 6: bubblewrap's command line (pid 1's) and the code file's bind named the
    host's temporary folder."""
    code = (
        "import os\n"
        "for path in ('/proc/1/cmdline', '/proc/self/cmdline', '/proc/self/mountinfo',\n"
        "             '/proc/1/mountinfo', '/proc/self/environ', '/proc/self/cgroup',\n"
        "             '/proc/1/environ', '/proc/self/mounts'):\n"
        "    try:\n"
        "        with open(path, 'rb') as fh:\n"
        "            print(path, fh.read().replace(b'\\0', b' ').decode())\n"
        "    except OSError as exc:\n"
        "        print(path, 'unreadable', exc.errno)\n"
    )
    result = make_sandbox(bwrap, audit_hook=False, output_chars=200_000).run(code)
    assert "/proc/self/mountinfo" in result.output
    for host in (helpers.RUNS[0], tempfile.gettempdir(), str(Path.cwd())):
        assert host not in result.output, host


def test_the_hosts_kernel_command_line_and_config_are_hidden(bwrap: str) -> None:
    """Class 7: /proc/cmdline, /proc/config.gz and the host's sysctls (its boot id)."""
    host = {}
    for path in ("/proc/cmdline", "/proc/sys/kernel/random/boot_id"):
        with open(path) as fh:
            host[path] = fh.read().strip()
    code = (
        "import os\n"
        "for path in ('/proc/cmdline', '/proc/config.gz', '/proc/sys/kernel/random/boot_id',\n"
        "             '/proc/modules', '/proc/swaps'):\n"
        "    try:\n"
        "        with open(path, 'rb') as fh:\n"
        "            print(path, len(fh.read()), 'bytes')\n"
        "    except OSError as exc:\n"
        "        print(path, 'refused', exc.errno)\n"
        "print(os.listdir('/proc/sys'))\n"
    )
    result = make_sandbox(bwrap, audit_hook=False).run(code)
    for value in host.values():
        assert value not in result.output
    for line in result.output.splitlines()[:5]:
        assert line.endswith(" refused 13") or line.endswith(" refused 2"), result
    assert result.output.splitlines()[-1] == "[]"


def test_no_host_pty_pool_and_no_dev_shm(bwrap: str) -> None:
    """Class 9: bubblewrap's /dev mounted a devpts (ptmxmode=666): ptys from the kernel-wide
    pool, thousands per run."""
    code = (
        "import os\n"
        "print(sorted(os.listdir('/dev')))\n"
        "for attempt in (os.openpty, lambda: open('/dev/ptmx', 'rb'),\n"
        "                lambda: open('/dev/shm/x', 'w'), lambda: open('/dev/x', 'w'),\n"
        "                lambda: open('/dev/pts/ptmx', 'rb')):\n"
        "    try:\n"
        "        attempt()\n"
        "        print('OPENED')\n"
        "    except OSError as exc:\n"
        "        print('refused', exc.errno)\n"
    )
    result = make_sandbox(bwrap, audit_hook=False).run(code)
    lines = result.output.splitlines()
    assert lines[0] == str(
        sorted(["fd", "full", "null", "random", "stderr", "stdin", "stdout", "urandom", "zero"])
    )
    assert "OPENED" not in result.output, result
    assert len([line for line in lines if line.startswith("refused")]) == 5


# --- 8: text the page, the terminal and the model read ------------------------------------------

INVISIBLE = "\u202e\u2066\u2067\u2068\u2069\u200b\u200d\ufeff\u2028\u00ad\U000e0041\U000e0100"


def test_bidi_and_invisible_characters_come_back_escaped(method: str) -> None:
    code = f"print('a{INVISIBLE}b')\nraise ValueError('c{INVISIBLE}d')"
    result = make_sandbox(method).run(code)
    assert result.error is not None
    for text in (result.output, result.error):
        assert not any(char in text for char in INVISIBLE), text
    assert result.output == "a\\u202e\\u2066\\u2067\\u2068\\u2069\\u200b\\u200d\\ufeff\\u2028" + (
        "\\u00ad\\U000e0041\\U000e0100b\n"
    )
    assert "c\\u202e" in result.error


def test_every_format_character_of_unicode_is_escaped() -> None:
    """The escaped set follows Unicode's categories (format, line and paragraph separators),
    checked against this Python's own Unicode data; Chinese and emoji stay as they are."""
    invisible = [
        chr(c)
        for c in range(sys.maxunicode + 1)
        if unicodedata.category(chr(c)) in ("Cf", "Zl", "Zp", "Cs")
    ]
    text = "".join(invisible)
    cleaned = sanitize(text)
    assert not any(char in cleaned for char in invisible)
    assert sanitize("草莓 ❤ é 🍓\tx\n") == "草莓 ❤ é 🍓\tx\n"
    assert sanitize(cleaned) == cleaned


# --- 10: the same attacks through arun, at once, and through the proxy -------------------------


async def test_hostile_runs_at_once_through_arun(method: str) -> None:
    sandbox = make_sandbox(method)
    attacks = [
        forge(b"[" * 100_000 + b"\n"),
        forge(json.dumps({"status": "error", "error": "x" * 60_000}).encode() + b"\n"),
        f"print('{INVISIBLE}')",
        MEMFD,
        "print(6 * 7)",
    ]
    results = await asyncio.gather(*(sandbox.arun(code) for code in attacks))
    assert [r.status for r in results][:1] == ["ok"]
    assert all(r.error is None or len(r.error) <= ERROR_CHARS for r in results)
    assert not any(char in results[2].output for char in INVISIBLE)
    assert results[-1].output == "42\n"


# --- The attacker's own ideas beyond the review -----------------------------------------------

SYSCALLS = {
    # name: (number, arguments) that are harmless even if the call were allowed
    "memfd_create": (319, "b'x', 0"),
    "shmget": (29, "0, 4096, 0o1600"),
    "semget": (64, "0, 1, 0o1600"),
    "msgget": (68, "0, 0o1600"),
    "mq_open": (240, "b'/q', 0o100, 0o600, None"),
    "io_setup": (206, "1, ctypes.byref(ctypes.c_ulong(0))"),
    "inotify_init1": (294, "0"),
    "keyctl": (250, "0, -1"),
    "add_key": (248, "b'user', b'k', b'v', 1, -3"),
    "ptrace": (101, "0, 0, 0, 0"),
    "personality": (135, "ctypes.c_ulong(0xFFFFFFFF)"),
    "perf_event_open": (298, "None, 0, -1, -1, 0"),
    "userfaultfd": (323, "0"),
    "io_uring_setup": (425, "1, None"),
    "bpf": (321, "0, None, 0"),
    "unshare": (272, "0"),
    "setns": (308, "-1, 0"),
    "mount": (165, "None, b'/tmp', None, 0, None"),
    "kcmp": (312, "1, 1, 0, 0, 0"),
    "pidfd_getfd": (438, "-1, 0, 0"),
    "modify_ldt": (154, "0, None, 0"),
    "fanotify_init": (300, "0, 0"),
}


def test_kernel_interfaces_the_code_never_needs_are_refused(bwrap: str) -> None:
    """Keyrings, ptrace, io_uring, userfaultfd, perf, BPF, new namespaces, SysV IPC, memfd,
    AIO, inotify...: EPERM from seccomp (or the missing capability), with the hook off."""
    needs(bwrap, "seccomp")
    calls = "\n".join(
        f"    ({n!r}, {number}, ({args},))," for n, (number, args) in SYSCALLS.items()
    )
    code = (
        "import ctypes\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        f"calls = [\n{calls}\n]\n"
        "for name, number, args in calls:\n"
        "    ctypes.set_errno(0)\n"
        "    back = libc.syscall(number, *args)\n"
        "    print(name, back, ctypes.get_errno())\n"
    )
    result = make_sandbox(bwrap, audit_hook=False).run(code)
    lines = result.output.splitlines()
    assert len(lines) == len(SYSCALLS), result
    for line in lines:
        _, back, errno_ = line.split()
        assert (back, errno_) == ("-1", "1"), line  # EPERM


def test_the_clock_cannot_be_set(bwrap: str) -> None:
    """Set to the time it shows: harmless even if it were allowed.  (The fallback as root
    keeps root's capabilities: its report says so, and it refuses to run by default.)"""
    code = (
        "import time\n"
        "for clock in (time.CLOCK_REALTIME,):\n"
        "    try:\n"
        "        time.clock_settime(clock, time.clock_gettime(clock))\n"
        "        print('SET')\n"
        "    except OSError as exc:\n"
        "        print('refused', exc.errno)\n"
    )
    assert make_sandbox(bwrap, audit_hook=False).run(code).output == "refused 1\n"


def test_the_code_holds_no_descriptor_of_the_host(method: str) -> None:
    """Only stdin, stdout/stderr and the result pipe: no memfd of the code, no cgroup file,
    no bubblewrap options or seccomp filter left open."""
    code = RESULT_FD + (
        "listing = os.open('/dev/null', os.O_RDONLY)  # the number listdir's own will take\n"
        "os.close(listing)\n"
        "sorted(int(n) for n in os.listdir('/proc/self/fd') if int(n) != listing) == "
        "sorted({0, 1, 2, fd})\n"
    )
    assert make_sandbox(method, audit_hook=False).run(code).output == "True\n"


def test_a_daemon_that_ignores_signals_dies_with_the_run(method: str) -> None:
    code = (
        "import os, signal, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        "        signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "        signal.signal(signal.SIGHUP, signal.SIG_IGN)\n"
        "        time.sleep(60)\n"
        "    os._exit(0)\n"
        "print('left a daemon')\n"
    )
    result = make_sandbox(method, audit_hook=False).run(code)
    assert result.output == "left a daemon\n"
    # The autouse fixture checks that no process of the run is left on the host.


def test_symlinks_in_the_work_folder_do_not_reach_the_host(
    method: str, tmp_path: Path, own_tempdir: Path
) -> None:
    canary = tmp_path / "canary"
    canary.mkdir()
    (canary / "keep.txt").write_text("keep")
    code = (
        "import os\n"
        f"os.symlink({str(canary)!r}, 'dir-link')\n"
        f"os.symlink({str(canary / 'keep.txt')!r}, 'file-link')\n"
        "os.mkdir('sub')\n"
        f"os.symlink({str(canary)!r}, 'sub/deeper')\n"
        "print('linked')\n"
    )
    result = make_sandbox(method, audit_hook=False).run(code)
    assert result.output == "linked\n"
    assert (canary / "keep.txt").read_text() == "keep"  # the clean-up followed no link
    assert list(own_tempdir.iterdir()) == []


async def test_a_run_cannot_see_another_runs_files_or_processes(bwrap: str) -> None:
    sandbox = make_sandbox(bwrap, audit_hook=False, wall_seconds=8)
    secret = "only-for-the-first-run"
    first = sandbox.arun(
        f"import time\nopen('mine.txt', 'w').write({secret!r})\ntime.sleep(1.5)\nprint('ok')"
    )
    second = sandbox.arun(
        "import os, time\n"
        "time.sleep(0.5)\n"
        "seen = []\n"
        "for pid in os.listdir('/proc'):\n"
        "    if pid.isdigit():\n"
        "        for path in (f'/proc/{pid}/root/tmp/mine.txt', f'/proc/{pid}/cwd/mine.txt'):\n"
        "            try:\n"
        "                seen.append(open(path).read())\n"
        "            except OSError:\n"
        "                pass\n"
        "print(os.listdir('/tmp'), seen, sorted(int(p) for p in os.listdir('/proc') "
        "if p.isdigit()))\n"
    )
    one, two = await asyncio.gather(first, second)
    assert one.output == "ok\n"
    assert secret not in two.output
    assert two.output.startswith("[] [] [1, 2")


def test_recursion_and_huge_numbers_in_the_last_expressions_repr(method: str) -> None:
    sandbox = make_sandbox(method)
    looped = sandbox.run("class Loop:\n    def __repr__(self):\n        return repr(self)\nLoop()")
    assert looped.status == "error"
    assert looped.error is not None and "RecursionError" in looped.error
    huge = sandbox.run("10 ** 100_000")
    assert huge.status == "error"
    assert huge.error is not None and "Exceeds the limit" in huge.error
    assert len(huge.error) <= ERROR_CHARS


def test_an_exception_that_cannot_be_shown_is_still_an_error(method: str) -> None:
    """Its __str__ recursing, or its class's very name raising, broke the bootstrap's report
    (the bootstrap itself crashed and its traceback was the output)."""
    sandbox = make_sandbox(method)
    looped = sandbox.run(
        "class Odd(Exception):\n    def __str__(self):\n        return str(self)\nraise Odd()\n"
    )
    assert looped.status == "error"
    assert looped.error is not None and "Odd" in looped.error
    nameless = sandbox.run(
        "def no_name(cls):\n"
        "    raise RuntimeError('no name')\n"
        "hidden = {'__name__': property(no_name), '__module__': property(no_name)}\n"
        "Meta = type('Meta', (type,), hidden)\n"
        "class Nameless(Exception, metaclass=Meta):\n"
        "    pass\n"
        "raise Nameless()\n"
    )
    assert nameless.status == "error", nameless
    assert nameless.error == "an exception whose message could not be shown"
    for result in (looped, nameless):
        assert 'File "<string>"' not in result.output  # no traceback of the bootstrap itself


def test_odd_system_exits(method: str) -> None:
    sandbox = make_sandbox(method)
    cases = {
        "class Bad:\n    def __eq__(self, other):\n        raise RuntimeError('no')\n"
        "raise SystemExit(Bad())": "error",
        "class Sub(int):\n    def __eq__(self, other):\n        return True\n"
        "raise SystemExit(Sub(4))": "error",
        "raise SystemExit(True)": "error",
        "raise SystemExit(256)": "error",
        "import sys\nsys.exit(0)": "ok",
    }
    for code, status in cases.items():
        result = sandbox.run(code)
        assert result.status == status, (code, result)
        json.dumps(result.to_dict())


def test_terminal_escapes_in_an_error_are_escaped(method: str) -> None:
    result = make_sandbox(method).run("raise ValueError('\\x1b]52;c;aGk=\\x07\\x1b[2J')")
    assert result.error is not None
    assert "\x1b" not in result.error and "\x07" not in result.error
    assert "\\x1b]52;c;aGk=\\x07" in result.error


class Proxy:
    """The real proxy app under uvicorn on 127.0.0.1, code steps on (as its operator allows)."""

    def __init__(self, upstream: str) -> None:
        import socket
        import threading

        import uvicorn

        from thinkchain.chain.settings import ChainSettings
        from thinkchain.proxy import ProxySettings, create_app

        chain = ChainSettings(mode="iterative", max_retries=1, retry_base_delay=0.0, min_steps=1)
        settings = ProxySettings(upstreams=(upstream,), tools=("python",), chain=chain)
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        config = uvicorn.Config(create_app(settings), log_config=None, lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )
        self.thread.start()
        helpers_wait = 0
        while not self.server.started and helpers_wait < 2000:
            threading.Event().wait(0.01)
            helpers_wait += 1
        assert self.server.started, "the proxy did not start"

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)
        self.sock.close()


@pytest.mark.parametrize(
    "attack",
    ["nested outcome", "long error"],
)
def test_the_proxy_answers_a_request_whose_code_attacks_the_host(bwrap: str, attack: str) -> None:
    """Class 10 through the proxy: the request is answered, the run's error bounded."""
    import openai

    from thinkchain.testing.fake_openai import FakeOpenAIServer, FakeReply

    code = {
        "nested outcome": forge(b"[" * 100_000 + b"\n"),
        "long error": forge(
            json.dumps({"status": "error", "error": "\u202e" + "x" * 60_000}).encode() + b"\n",
            "os._exit(1)",
        ),
    }[attack]

    def responder(body: dict[str, object]) -> FakeReply:
        fmt = body.get("response_format") or {}
        if not isinstance(fmt, dict) or fmt.get("type") not in ("json_schema", "json_object"):
            return FakeReply("The answer is 42.")
        messages = body.get("messages")
        assert isinstance(messages, list)
        if not any(m.get("role") == "assistant" for m in messages):
            content = f"Let me check.\n```python\n{code}\n```\n"
            step = {"title": "Check", "content": content, "next_action": "continue"}
        else:
            step = {"title": "Done", "content": "Checked.", "next_action": "final_answer"}
        return FakeReply(json.dumps(step))

    with FakeOpenAIServer() as fake:
        fake.responder = responder
        proxy = Proxy(fake.url)
        try:
            client = openai.OpenAI(base_url=f"{proxy.url}/v1", api_key="k", max_retries=0)
            reply = client.chat.completions.create(
                model="fake-model-thinkchain",
                messages=[{"role": "user", "content": "What is 6 * 7?"}],
                extra_body={"thinkchain": {"tools": ["python"]}},
                timeout=60,
            )
        finally:
            proxy.close()
    assert reply.choices[0].message.content == "The answer is 42."
    run = reply.model_extra["thinkchain"]["steps"][0]["runs"][0]  # type: ignore[index]
    assert run["status"] in STATUSES
    assert run["error"] is None or len(run["error"]) <= ERROR_CHARS
    assert "\u202e" not in json.dumps(run, ensure_ascii=False)


def test_the_sandboxs_first_process_is_out_of_reach(bwrap: str) -> None:
    """bubblewrap's pid 1 holds the descriptors it was started with: the code can open none
    of them, nor read its memory, environment or root."""
    code = (
        "import os\n"
        "for path in ('/proc/1/fd', '/proc/1/root', '/proc/1/cwd', '/proc/1/environ',\n"
        "             '/proc/1/mem', '/proc/1/maps'):\n"
        "    try:\n"
        "        if path.endswith('fd'):\n"
        "            print(path, os.listdir(path))\n"
        "        elif path.endswith(('root', 'cwd')):\n"
        "            print(path, os.listdir(path))\n"
        "        else:\n"
        "            print(path, len(open(path, 'rb').read()))\n"
        "    except OSError as exc:\n"
        "        print(path, 'refused', exc.errno)\n"
    )
    result = make_sandbox(bwrap, audit_hook=False).run(code)
    lines = result.output.splitlines()
    assert len(lines) == 6, result
    assert all(line.split()[-2:] == ["refused", "13"] for line in lines), result


def test_an_abstract_unix_socket_of_the_host_is_out_of_reach(method: str) -> None:
    """Abstract Unix sockets (D-Bus, X11 use them) belong to a network namespace, not to a
    folder: the run's own network namespace has none of the host's."""
    import socket
    import uuid

    if not layer_holds(method, "network"):
        pytest.skip("the network namespace does not hold here")
    name = f"\0thinkchain-sandbox-test-{uuid.uuid4().hex}"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(name)
    server.listen(1)
    server.settimeout(0.3)
    try:
        code = (
            "import socket\n"
            "client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n"
            "try:\n"
            f"    client.connect({name!r})\n"
            "    print('CONNECTED')\n"
            "except OSError as exc:\n"
            "    print('refused', exc.errno)\n"
        )
        result = make_sandbox(method, audit_hook=False).run(code)
        assert result.output == "refused 111\n", result  # ECONNREFUSED: no such socket here
        with pytest.raises(TimeoutError):
            server.accept()
    finally:
        server.close()


def test_the_code_cannot_reach_its_cgroup(bwrap: str) -> None:
    """No cgroup filesystem in the mount tree: the code can neither raise its memory limit
    nor move itself out of its cgroup (and mounting one is refused)."""
    needs_cgroup()
    code = (
        "import os\n"
        "print(os.path.exists('/sys'), os.path.exists('/sys/fs/cgroup'))\n"
        "print([line.split(':')[2] for line in open('/proc/self/cgroup') if ':memory:' in line])\n"
    )
    result = make_sandbox(bwrap, audit_hook=False).run(code)
    lines = result.output.splitlines()
    assert lines[0] == "False False", result
    assert lines[1].startswith(f"['/{PREFIX}{os.getpid()}-"), result  # inside its own
