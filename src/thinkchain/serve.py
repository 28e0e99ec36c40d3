"""Start a model server as a child process, wait until it answers, stop it cleanly.

Two engines give the same OpenAI-compatible server shape:

* ``vllm``: the seed's deployment, ``python -m vllm.entrypoints.openai.api_server`` with its
  arguments (served name, 32k context, port 8000).  Needs a GPU and ``thinkchain[vllm]``.
* ``llama.cpp``: llama-cpp-python's server on the CPU, serving a GGUF (the embedded default
  unless told otherwise).

The command lines are pure functions so they can be tested without either engine.  The child
runs in its own session (process group): Ctrl-C in the terminal reaches thinkchain, which
forwards it to the whole group, waits a grace period, then kills whatever is left, grandchildren
included, so no server outlives the command.
"""

from __future__ import annotations

import collections
import contextlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

ENGINES = ("vllm", "llama.cpp")
# The seed's vLLM deployment.
VLLM_DEFAULT_PORT = 8000
VLLM_DEFAULT_MAX_MODEL_LEN = 32768
LLAMACPP_DEFAULT_PORT = 8080
# Room for a chain of many steps; llama-cpp-python's own default (2048) is too small.
LLAMACPP_DEFAULT_CONTEXT = 8192
# Loading a 7B model on a GPU takes a minute or two (longer when vLLM downloads it first).
READY_TIMEOUT = {"vllm": 1800.0, "llama.cpp": 300.0}
STOP_GRACE = 15.0  # seconds a server gets to shut down after the forwarded signal
_SECRET_FLAGS = ("--api-key", "--api_key")
# llama-cpp-python's server extra: what `python -m llama_cpp.server` imports.
_LLAMACPP_SERVER_MODULES = ("llama_cpp", "uvicorn", "fastapi", "sse_starlette", "pydantic_settings")


class ServeError(Exception):
    """The server cannot be started or stopped.  The message is meant for people."""


# -- command lines ---------------------------------------------------------------------------


def default_served_name(model: str) -> str:
    """``/root/autodl-tmp/qwen/Qwen2.5-7B-Instruct`` or ``qwen/Qwen2.5-7B-Instruct`` ->
    ``Qwen2.5-7B-Instruct`` (the seed's served name for the seed's model)."""
    name = model.rstrip("/\\").replace("\\", "/").rsplit("/", 1)[-1]
    return name.removesuffix(".gguf") or model


@dataclass(frozen=True)
class VllmOptions:
    model: str  # a local folder or a hub id that vLLM downloads itself
    served_model_name: str | None = None  # default: the model's last path component
    max_model_len: int | None = VLLM_DEFAULT_MAX_MODEL_LEN
    host: str | None = None  # None: vLLM's default, every interface (as in the seed)
    port: int = VLLM_DEFAULT_PORT
    tensor_parallel_size: int | None = None
    pipeline_parallel_size: int | None = None
    api_key: str | None = field(default=None, repr=False)
    extra_args: tuple[str, ...] = ()  # passed through untouched, e.g. the Ray backend

    @property
    def served_name(self) -> str:
        return self.served_model_name or default_served_name(self.model)


def vllm_command(opts: VllmOptions, python: str = sys.executable) -> list[str]:
    cmd = [python, "-m", "vllm.entrypoints.openai.api_server", "--model", opts.model]
    cmd += ["--served-model-name", opts.served_name]
    if opts.max_model_len is not None:
        cmd += ["--max-model-len", str(opts.max_model_len)]
    if opts.host is not None:
        cmd += ["--host", opts.host]
    cmd += ["--port", str(opts.port)]
    if opts.tensor_parallel_size is not None:
        cmd += ["--tensor-parallel-size", str(opts.tensor_parallel_size)]
    if opts.pipeline_parallel_size is not None:
        cmd += ["--pipeline-parallel-size", str(opts.pipeline_parallel_size)]
    if opts.api_key:
        cmd += ["--api-key", opts.api_key]
    return cmd + list(opts.extra_args)


@dataclass(frozen=True)
class LlamaCppOptions:
    model_path: Path
    served_model_name: str | None = None  # default: the file name without .gguf
    host: str = "127.0.0.1"  # a CPU server is a local thing unless asked otherwise
    port: int = LLAMACPP_DEFAULT_PORT
    n_ctx: int = LLAMACPP_DEFAULT_CONTEXT
    api_key: str | None = field(default=None, repr=False)
    extra_args: tuple[str, ...] = ()

    @property
    def served_name(self) -> str:
        return self.served_model_name or default_served_name(str(self.model_path))


def llamacpp_command(opts: LlamaCppOptions, python: str = sys.executable) -> list[str]:
    cmd = [python, "-m", "llama_cpp.server", "--model", str(opts.model_path)]
    cmd += ["--model_alias", opts.served_name, "--host", opts.host, "--port", str(opts.port)]
    cmd += ["--n_ctx", str(opts.n_ctx)]
    if opts.api_key:
        cmd += ["--api_key", opts.api_key]
    return cmd + list(opts.extra_args)


def redact(cmd: Sequence[str]) -> str:
    """The command for people to read, with API keys replaced."""
    shown = list(cmd)
    for i, arg in enumerate(shown):
        if arg in _SECRET_FLAGS and i + 1 < len(shown):
            shown[i + 1] = "***"
        elif arg.startswith(tuple(f + "=" for f in _SECRET_FLAGS)):
            shown[i] = arg.split("=", 1)[0] + "=***"
    return " ".join(shown)


def base_url(host: str | None, port: int) -> str:
    """The URL a client on this machine uses (a wildcard bind is reached via loopback)."""
    if host in (None, "", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/v1"


# -- preconditions ---------------------------------------------------------------------------

FindSpec = Callable[[str], Any]


def _missing(modules: Sequence[str], find_spec: FindSpec) -> list[str]:
    missing = []
    for name in modules:
        try:
            if find_spec(name) is None:
                missing.append(name)
        except (ImportError, ValueError):
            missing.append(name)
    return missing


def check_vllm_installed(find_spec: FindSpec = importlib.util.find_spec) -> None:
    # find_spec, not import: importing vLLM takes seconds and initialises CUDA.
    if _missing(["vllm"], find_spec):
        raise ServeError(
            "vLLM is not installed: pip install 'thinkchain[vllm]' on a machine with a GPU "
            "(on a CPU, use `thinkchain serve --engine llama.cpp`)"
        )


def check_llamacpp_installed(find_spec: FindSpec = importlib.util.find_spec) -> None:
    missing = _missing(_LLAMACPP_SERVER_MODULES, find_spec)
    if missing:
        raise ServeError(
            f"llama-cpp-python's server is not installed (missing: {', '.join(missing)}): "
            "pip install 'thinkchain[serve]'"
        )


def detect_gpu(
    dev: Path = Path("/dev"),
    which: Callable[[str], str | None] = shutil.which,
    env: Mapping[str, str] | None = None,
) -> str | None:
    """A short description of the GPUs vLLM could use, or None.

    Cheap checks only (no CUDA initialisation): nvidia-smi, NVIDIA device files, the ROCm
    driver's device file.  CUDA_VISIBLE_DEVICES set to nothing hides every GPU.
    """
    visible = (os.environ if env is None else env).get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return None
    smi = which("nvidia-smi")
    if smi:
        try:
            listed = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=15)
            gpus = [ln for ln in listed.stdout.splitlines() if ln.startswith("GPU ")]
            if listed.returncode == 0 and gpus:
                return (
                    f"{len(gpus)} NVIDIA GPU(s): {gpus[0].split(':', 1)[-1].split('(')[0].strip()}"
                )
        except (OSError, subprocess.SubprocessError):
            pass
    nvidia = sorted(p for p in dev.glob("nvidia[0-9]*"))
    if nvidia:
        return f"{len(nvidia)} NVIDIA device(s)"
    if (dev / "kfd").exists():
        return "an AMD ROCm device"
    return None


def check_gpu(detect: Callable[[], str | None] | None = None) -> str:
    found = (detect or detect_gpu)()  # looked up at call time, so tests can replace it
    if not found:
        raise ServeError(
            "no GPU found (no nvidia-smi, /dev/nvidia*, or /dev/kfd): vLLM needs one; "
            "on a CPU, use `thinkchain serve --engine llama.cpp`"
        )
    return found


def port_is_free(host: str | None, port: int) -> bool:
    bind_host = "" if host in (None, "0.0.0.0") else host
    family = socket.AF_INET6 if bind_host and ":" in bind_host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # Servers set SO_REUSEADDR, so a port left in TIME_WAIT is free for them; on Linux a
        # port with a live listener still refuses this bind.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((bind_host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


# -- the child process -----------------------------------------------------------------------


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


# -- running in the foreground ---------------------------------------------------------------


@contextlib.contextmanager
def _stop_signals() -> Iterator[list[int]]:
    """Collect SIGINT/SIGTERM instead of dying, so the server can be stopped in order."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def on_signal(signum: int, frame: object) -> None:
        received.append(signum)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def run_in_foreground(
    server: ServerProcess,
    *,
    ready_timeout: float,
    on_ready: Callable[[list[str]], None],
    on_stopping: Callable[[int], None] = lambda sig: None,
    grace: float = STOP_GRACE,
) -> int:
    """Start ``server``, call ``on_ready`` once it answers, and run until a signal or until it
    exits.  Returns 0 after a requested stop; raises ServeError if the server dies by itself.
    Whatever happens, the server and its children are gone when this returns."""
    with _stop_signals() as received:
        try:
            server.start()
            models = server.wait_ready(ready_timeout, should_stop=lambda: bool(received))
            if not received:
                on_ready(models)
            while not received and server.poll() is None:
                time.sleep(0.2)
            if received:
                on_stopping(received[0])
                # Forward what the user sent (vLLM and uvicorn treat SIGINT as "shut down").
                server.stop(received[0], grace, hurry=lambda: len(received) > 1)
                return 0
            server.stop()
            raise ServeError(
                f"the {server.name} exited with code {server.poll()}; "
                f"its last lines:\n{server.tail() or '(no output)'}"
            )
        finally:
            server.stop(grace=grace, hurry=lambda: len(received) > 1)
