"""A server as a child process: start it, wait until it answers, stop it with no leftovers.

The child runs in its own session (process group): a stop forwards the signal to the whole
group, waits a grace period, then kills whatever is left, grandchildren included, so no
server outlives the command that started it.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from typing import IO, Any

from thinkchain.models.serve.shared import ServeError

STOP_GRACE = 15.0  # seconds a server gets to shut down after the forwarded signal


def list_models(url: str, api_key: str | None = None, timeout: float = 2.0) -> list[str] | None:
    """The model ids at ``url``/models, or None while nothing answers there yet."""
    request = urllib.request.Request(url.rstrip("/") + "/models")
    if api_key:
        request.add_header("Authorization", f"Bearer {api_key}")
    # No proxies: an http_proxy in the environment must not catch requests to loopback.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=timeout) as reply:
            payload = json.loads(reply.read() or b"{}")
    except (OSError, ValueError):  # refused, reset, timed out, HTTP errors, not JSON yet
        return None
    return [str(m.get("id")) for m in payload.get("data", []) if isinstance(m, dict)]


class ServerProcess:
    """One server child: start, wait until ``/v1/models`` answers, stop with no leftovers."""

    def __init__(
        self,
        command: Sequence[str],
        url: str,
        *,
        name: str = "server",
        api_key: str | None = None,
        echo: IO[str] | None = None,
        env: dict[str, str] | None = None,
        tail_lines: int = 30,
    ) -> None:
        self.command = list(command)
        self.url = url
        self.name = name
        self._api_key = api_key
        self._echo = echo  # where the server's own output goes live (None: kept, not shown)
        self._env = env
        self._tail: collections.deque[str] = collections.deque(maxlen=tail_lines)
        self._proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self._known: dict[int, Any] = {}  # psutil processes seen in the tree, by pid

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def poll(self) -> int | None:
        return self._proc.poll() if self._proc else None

    def tail(self) -> str:
        return "\n".join(self._tail)

    def start(self) -> None:
        try:
            self._proc = subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
                bufsize=1,
                env=self._env,
                start_new_session=True,  # its own process group: signals reach the whole tree
                preexec_fn=_die_with_parent(),
            )
        except OSError as err:
            raise ServeError(f"cannot start the {self.name}: {err}") from err
        self._reader = threading.Thread(target=self._read_output, daemon=True)
        self._reader.start()

    def _read_output(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            self._tail.append(line.rstrip())
            if self._echo is not None:
                with contextlib.suppress(Exception):
                    self._echo.write(line)
                    self._echo.flush()

    def _remember_tree(self) -> None:
        """Note every descendant now, so ones that leave the group can still be stopped."""
        if self._proc is None:
            return
        try:
            import psutil
        except ImportError:
            return
        try:
            root = psutil.Process(self._proc.pid)
            for proc in root.children(recursive=True):
                self._known.setdefault(proc.pid, proc)
        except psutil.Error:
            pass

    def wait_ready(
        self, timeout: float, should_stop: Callable[[], bool] = lambda: False
    ) -> list[str]:
        """Poll ``/v1/models`` until it answers; the ids it lists.  Raises ServeError if the
        child exits first (with its last lines) or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        while True:
            code = self.poll()
            if code is not None:
                self._join_reader()
                raise ServeError(
                    f"the {self.name} exited with code {code} before it was ready; "
                    f"its last lines:\n{self.tail() or '(no output)'}"
                )
            if should_stop():
                return []
            models = list_models(self.url, self._api_key)
            if models is not None:
                self._remember_tree()
                return models
            if time.monotonic() > deadline:
                raise ServeError(
                    f"the {self.name} did not answer at {self.url}/models within {timeout:.0f} s; "
                    f"its last lines:\n{self.tail() or '(no output)'}"
                )
            self._remember_tree()
            time.sleep(0.5)

    def _group_alive(self) -> bool:
        if self._proc is None:
            return False
        try:
            os.killpg(self._proc.pid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True

    def _signal_group(self, sig: int) -> None:
        if self._proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._proc.pid, sig)

    def stop(
        self,
        sig: int = signal.SIGTERM,
        grace: float = STOP_GRACE,
        hurry: Callable[[], bool] = lambda: False,
    ) -> int | None:
        """Forward ``sig`` to the server's group, wait up to ``grace`` seconds (less if
        ``hurry()`` turns true, e.g. a second Ctrl-C), then kill what is left.  Idempotent."""
        if self._proc is None:
            return None
        self._remember_tree()
        if self._group_alive():
            self._signal_group(sig)
            deadline = time.monotonic() + grace
            while self._group_alive() and time.monotonic() < deadline and not hurry():
                self._proc.poll()  # reap the leader so the group can empty
                time.sleep(0.1)
            self._signal_group(signal.SIGKILL)
        code = self._proc.wait()
        self._kill_strays()
        self._join_reader()
        return code

    def _kill_strays(self) -> None:
        """Descendants that started their own session (Ray does) are not in our group."""
        if not self._known:
            return
        import psutil

        alive = [p for p in self._known.values() if _still_running(p)]
        for proc in alive:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        psutil.wait_procs(alive, timeout=5)

    def _join_reader(self) -> None:
        if self._reader is not None:
            self._reader.join(timeout=5)


def _die_with_parent() -> Callable[[], None] | None:
    """On Linux, a child that gets SIGTERM when thinkchain dies, even by SIGKILL (when no
    handler can run): a GPU server must not outlive the command that started it.

    The kernel sends it when the *thread* that started the child ends, so start servers from a
    thread that lives as long as they should (the CLI uses the main thread).  libc is loaded
    here, in the parent, so the child only makes one system call before exec.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1

    def set_parent_death_signal() -> None:
        prctl(pr_set_pdeathsig, int(signal.SIGTERM), 0, 0, 0)

    return set_parent_death_signal


def _still_running(proc: Any) -> bool:
    try:
        return bool(proc.is_running()) and proc.status() != "zombie"
    except Exception:
        return False
