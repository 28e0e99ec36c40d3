"""Every escape a user would fear: each one fails inside the sandbox and the host is unchanged.

Each attack runs with the audit hook on (the sandbox as shipped).  Where the kernel's layers
are meant to stop it on their own, it runs again with the hook off, so a hole in the hook
alone cannot hide a hole underneath.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import platformdirs
import pytest

from thinkchain.sandbox import isolation_report
from thinkchain.sandbox.layout import interpreter

from .helpers import make_sandbox, make_secret

SECRET = "s3cret-" + uuid.uuid4().hex


def kernel_layer_holds(method: str, layer: str) -> bool:
    return isolation_report(method).layer(layer).holds  # type: ignore[arg-type]


def audits(method: str, layer: str) -> list[bool]:
    """The hook settings to try: off too where the kernel's layer should hold alone."""
    return [True, False] if kernel_layer_holds(method, layer) else [True]


class Listener:
    """A real TCP server on 127.0.0.1 that records every connection it accepts."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.2)
        self.port = self.server.getsockname()[1]
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.server.accept()
            except OSError:
                continue
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.server.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = Listener()
    # The control: the server does accept a connection from outside the sandbox.
    socket.create_connection(("127.0.0.1", server.port), timeout=5).close()
    for _ in range(50):
        if server.accepted:
            break
        threading.Event().wait(0.05)
    assert server.accepted == 1
    server.accepted = 0
    yield server
    server.close()


def test_cannot_connect_to_a_server_on_the_hosts_loopback(method: str, listener: Listener) -> None:
    code = (
        "import socket\n"
        f"s = socket.create_connection(('127.0.0.1', {listener.port}), timeout=2)\n"
        "s.sendall(b'hello')\n"
        "print('connected')\n"
    )
    for audit in audits(method, "network"):
        result = make_sandbox(method, audit_hook=audit).run(code)
        assert result.status == "error", result
        assert "connected" not in result.output
    threading.Event().wait(0.3)  # a connection would have been accepted by now
    assert listener.accepted == 0


def test_cannot_reach_an_outside_address(method: str) -> None:
    # Documentation addresses (RFC 5737): never a real host, even if the sandbox were broken.
    # Refused at once (no route, or the hook), not a timeout on the way out.
    code = (
        "import errno, socket\n"
        "for host in ('192.0.2.1', '198.51.100.1', '203.0.113.1'):\n"
        "    try:\n"
        "        socket.create_connection((host, 53), timeout=2).close()\n"
        "        print('reached', host)\n"
        "    except PermissionError:\n"
        "        print('refused')\n"
        "    except OSError as exc:\n"
        "        print('refused' if exc.errno == errno.ENETUNREACH else f'left: {exc!r}')\n"
    )
    for audit in audits(method, "network"):
        result = make_sandbox(method, audit_hook=audit).run(code)
        assert "reached" not in result.output
        assert result.output.count("refused") == 3, result


def test_no_network_interface_but_loopback(method: str) -> None:
    if not kernel_layer_holds(method, "network"):
        pytest.skip("the network namespace does not hold here (see the isolation report)")
    code = "[line.split(':')[0].strip() for line in open('/proc/self/net/dev')][2:]"
    result = make_sandbox(method, audit_hook=False).run(code)
    assert result.output.strip() in ("['lo']", "[]")


@pytest.fixture
def home_secret() -> Iterator[Path]:
    yield from make_secret(Path.home(), f".thinkchain-sandbox-test-{uuid.uuid4().hex}", SECRET)


@pytest.fixture
def history_secret() -> Iterator[Path]:
    """A file beside the real history database (platformdirs' data folder, as the store uses)."""
    folder = Path(platformdirs.user_data_dir("thinkchain"))
    yield from make_secret(folder, f"sandbox-test-{uuid.uuid4().hex}.txt", SECRET)


@pytest.fixture
def models_secret() -> Iterator[Path]:
    folder = Path(platformdirs.user_cache_dir("thinkchain"))
    yield from make_secret(folder, f"sandbox-test-{uuid.uuid4().hex}.txt", SECRET)


def _read_attempts(path: Path) -> str:
    return (
        f"p = {str(path)!r}\n"
        "import os\n"
        "import pathlib, shutil\n"
        "for attempt in (lambda: open(p).read(), lambda: pathlib.Path(p).read_bytes(),\n"
        "                lambda: shutil.copy(p, 'copy') and open('copy').read()):\n"
        "    try:\n"
        "        print('got', attempt())\n"
        "    except Exception as exc:\n"
        "        print('refused', type(exc).__name__)\n"
        "try:\n"
        "    print('listed', os.listdir(os.path.dirname(p)))\n"
        "except Exception as exc:\n"
        "    print('listing refused', type(exc).__name__)\n"
    )


@pytest.mark.parametrize("which", ["home_secret", "history_secret", "models_secret"])
def test_cannot_read_the_users_files(
    method: str, which: str, request: pytest.FixtureRequest
) -> None:
    path = request.getfixturevalue(which)
    for audit in audits(method, "filesystem"):
        result = make_sandbox(method, audit_hook=audit).run(_read_attempts(path))
        assert SECRET not in result.output
        assert path.name not in result.output
        assert "got" not in result.output, result
        assert result.output.count("refused") >= 3, result  # the listing may show a folder
    assert path.read_text() == SECRET


def test_cannot_open_a_history_database(method: str, tmp_path: Path) -> None:
    db = tmp_path / "history.sqlite3"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE chains (question TEXT)")
        conn.execute("INSERT INTO chains VALUES (?)", (SECRET,))
    conn.close()
    before = db.read_bytes()
    code = (
        "import sqlite3\n"
        f"conn = sqlite3.connect({str(db)!r})\n"
        "print(conn.execute('SELECT * FROM chains').fetchall())\n"
    )
    raw = f"print(open({str(db)!r}, 'rb').read())"
    for audit in audits(method, "filesystem"):
        sandbox = make_sandbox(method, audit_hook=audit)
        for attempt in (code, raw):
            result = sandbox.run(attempt)
            assert result.status == "error", result
            assert SECRET not in result.output
    assert db.read_bytes() == before


def _on_the_way_to_the_interpreter(folder: str) -> set[str]:
    """Names in ``folder`` that lead to the interpreter's files (the sandbox shows those)."""
    names = set()
    for path in interpreter().binds():
        if path.startswith(folder.rstrip("/") + "/"):
            names.add(path[len(folder.rstrip("/")) + 1 :].split("/")[0])
    return names


def test_cannot_list_root_home_or_the_project(method: str) -> None:
    here = str(Path.cwd())
    code = (
        "import os\n"
        f"for folder in ('/root', '/home', '/work', os.path.expanduser('~'), {here!r}):\n"
        "    try:\n"
        "        print(folder, sorted(os.listdir(folder)))\n"
        "    except OSError as exc:\n"
        "        print(folder, 'refused', type(exc).__name__)\n"
    )
    secrets = {
        entry
        for folder in ("/root", "/home", "/work", str(Path.cwd()))
        if os.path.isdir(folder)
        for entry in set(os.listdir(folder)) - _on_the_way_to_the_interpreter(folder)
    }
    assert secrets  # the host does have something there to hide
    for audit in audits(method, "filesystem"):
        result = make_sandbox(method, audit_hook=audit).run(code)
        for line in result.output.splitlines():
            assert not any(f"'{name}'" in line for name in secrets), line


def test_cannot_write_outside_its_folder(method: str, tmp_path: Path) -> None:
    targets = [tmp_path / "written-by-sandbox", Path.home() / f".sandbox-wrote-{uuid.uuid4().hex}"]
    targets.append(Path(sys.prefix) / f"sandbox-wrote-{uuid.uuid4().hex}")
    stdlib = next(p for p in interpreter().stdlib if os.path.isdir(p))
    targets.append(Path(stdlib) / f"sandbox-wrote-{uuid.uuid4().hex}.py")
    code = (
        "import os\n"
        f"for p in {[str(t) for t in targets]!r}:\n"
        "    try:\n"
        "        os.makedirs(os.path.dirname(p), exist_ok=True)\n"
        "        with open(p, 'w') as fh:\n"
        "            fh.write('x')\n"
        "        print('inside the sandbox wrote', p)\n"
        "    except OSError as exc:\n"
        "        print('refused', type(exc).__name__)\n"
    )
    for audit in audits(method, "filesystem"):
        make_sandbox(method, audit_hook=audit).run(code)
        for target in targets:
            assert not target.exists(), f"{target} appeared on the host"


@pytest.mark.parametrize(
    "attack",
    [
        "import subprocess\nsubprocess.run(['id'])",
        "import os\nos.system('id')",
        "import os\npid = os.fork()\nprint('forked', pid)",
        "import os\nos.execv('/bin/sh', ['sh', '-c', 'id'])",
        "import os\nos.posix_spawn('/bin/sh', ['sh', '-c', 'id'], {})",
        "import pty\npty.spawn('/bin/sh')",
        "import multiprocessing\nmultiprocessing.Process(target=print).start()",
    ],
)
def test_cannot_start_processes(method: str, attack: str) -> None:
    result = make_sandbox(method).run(attack)
    assert result.status == "error", result
    assert "forked" not in result.output
    assert "uid=" not in result.output


def test_ctypes_is_refused(method: str) -> None:
    code = "import ctypes\nlibc = ctypes.CDLL(None)\nprint('pid', libc.getpid())"
    result = make_sandbox(method).run(code)
    assert result.status == "error"
    assert result.error is not None
    assert "ctypes" in result.error
    assert "pid" not in result.output


def test_env_holds_no_secret_of_the_host(method: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-" + SECRET)
    monkeypatch.setenv("THINKCHAIN_API_KEY", "tc-" + SECRET)
    code = (
        "import os\n"
        "print(sorted(os.environ))\n"
        "print(os.environ.get('HOME'))\n"
        "for pid in os.listdir('/proc'):\n"
        "    try:\n"
        "        print(open(f'/proc/{pid}/environ', 'rb').read())\n"
        "    except Exception:\n"
        "        pass\n"
    )
    for audit in audits(method, "namespaces"):
        result = make_sandbox(method, audit_hook=audit).run(code)
        assert SECRET not in result.output
        assert "OPENAI_API_KEY" not in result.output
        assert str(Path.home()) + "\n" not in result.output


def test_cannot_signal_the_host(method: str) -> None:
    received: list[int] = []
    old = signal.signal(signal.SIGUSR1, lambda number, frame: received.append(number))
    try:
        code = (
            "import os, signal\n"
            f"for pid in ({os.getpid()}, {os.getppid()}):\n"
            "    try:\n"
            "        os.kill(pid, signal.SIGUSR1)\n"
            "        print('signalled', pid)\n"
            "    except Exception as exc:\n"
            "        print('refused', type(exc).__name__)\n"
        )
        for audit in audits(method, "processes"):
            result = make_sandbox(method, audit_hook=audit).run(code)
            assert "signalled" not in result.output, result
        threading.Event().wait(0.2)
        assert received == []
    finally:
        signal.signal(signal.SIGUSR1, old)


def test_kill_everything_reaches_only_the_sandbox(method: str) -> None:
    if not (kernel_layer_holds(method, "processes") and kernel_layer_holds(method, "namespaces")):
        pytest.skip("needs an unprivileged uid and a pid namespace to be tried without the hook")
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        for audit in (True, False):
            make_sandbox(method, audit_hook=audit).run("import os, signal\nos.kill(-1, 9)")
        assert bystander.poll() is None, "a process of the host was killed"
    finally:
        bystander.kill()
        bystander.wait()


@pytest.mark.parametrize(
    "tamper",
    [
        "hook.__defaults__ = None",
        "del hook.__defaults__",
        "hook.__kwdefaults__ = {}",
        "hook.__code__ = (lambda event, args: None).__code__",
        "sys.modules['os'].path.realpath = lambda p: '/tmp'",
    ],
)
def test_the_audit_hook_cannot_be_switched_off_from_inside(method: str, tamper: str) -> None:
    code = (
        "import gc, sys\n"
        "hook = [f for f in gc.get_objects() if getattr(f, '__name__', '') == 'hook'][0]\n"
        "try:\n"
        f"    {tamper}\n"
        "except PermissionError as exc:\n"
        "    print('tamper refused')\n"
        "import socket\n"
        "socket.socket()\n"
    )
    result = make_sandbox(method).run(code)
    assert result.status == "error", result
    assert result.error is not None
    assert "sandbox: socket.__new__: the sandbox has no network" in result.error
