"""`thinkchain serve` process handling against a stand-in engine (a real child process that
serves /v1/models): waiting until ready, early exits, stopping with no process left behind.

The stand-in is also installed as a fake ``vllm`` package for one subprocess, so the whole vLLM
path of the command runs (command line, readiness, printed URL, Ctrl-C) without vLLM or a GPU.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

import psutil
import pytest

from thinkchain.models import serve

SCRIPT = Path(__file__).with_name("fake_engine_server.py")
THINKCHAIN = str(Path(sys.executable).with_name("thinkchain"))


def engine_command(port: int, *flags: str) -> list[str]:
    return [sys.executable, str(SCRIPT), "--port", str(port), *flags]


def all_gone(procs: list[psutil.Process], timeout: float = 10.0) -> bool:
    _, alive = psutil.wait_procs(procs, timeout=timeout)
    return not [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def test_ready_server_lists_its_models_and_stops_with_all_its_children():
    port = serve.free_port()
    flags = ("--fake-child", "--fake-detached-child")
    server = serve.ServerProcess(engine_command(port, *flags), serve.base_url("127.0.0.1", port))
    server.start()
    try:
        assert server.wait_ready(timeout=60) == ["fake-engine-model"]
        procs = tree(server.pid)
        assert len(procs) == 3  # the engine, a child in its group, one in its own session
    finally:
        server.stop(grace=5)
    assert all_gone(procs)
    assert serve.port_is_free("127.0.0.1", port)
    assert serve.list_models(server.url) is None


def test_an_engine_that_exits_before_it_is_ready_is_reported_with_its_last_lines():
    port = serve.free_port()
    server = serve.ServerProcess(
        engine_command(port, "--fake-exit-early", "3"), serve.base_url(None, port), name="engine"
    )
    server.start()
    with pytest.raises(serve.ServeError) as caught:
        server.wait_ready(timeout=60)
    message = str(caught.value)
    assert "the engine exited with code 3 before it was ready" in message
    assert "CUDA out of memory" in message
    server.stop()


def test_an_engine_that_never_answers_times_out_and_is_cleaned_up():
    port = serve.free_port()
    server = serve.ServerProcess(
        engine_command(port, "--fake-delay", "120"), serve.base_url(None, port), name="engine"
    )
    server.start()
    procs = tree(server.pid)
    with pytest.raises(serve.ServeError, match=r"did not answer at .* within 1 s"):
        server.wait_ready(timeout=1)
    server.stop(grace=5)
    assert all_gone(procs)


def test_an_engine_that_ignores_the_stop_signal_is_killed_after_the_grace_period():
    port = serve.free_port()
    server = serve.ServerProcess(
        engine_command(port, "--fake-ignore-stop", "--fake-child"), serve.base_url(None, port)
    )
    server.start()
    server.wait_ready(timeout=60)
    procs = tree(server.pid)
    server.stop(signal.SIGINT, grace=1)
    assert all_gone(procs)


# -- the whole command, with a stand-in for vLLM ---------------------------------------------


@pytest.fixture
def fake_vllm(tmp_path: Path) -> dict[str, str]:
    """Environment in which `import vllm` finds a package that runs the stand-in engine."""
    pkg = tmp_path / "fakevllm" / "vllm" / "entrypoints" / "openai"
    pkg.mkdir(parents=True)
    for folder in (pkg, pkg.parent, pkg.parent.parent):
        (folder / "__init__.py").write_text("")
    (pkg / "api_server.py").write_text(
        f"import runpy\nrunpy.run_path({str(SCRIPT)!r}, run_name='__main__')\n"
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = str(tmp_path / "fakevllm")
    env["FAKE_ENGINE_RECORD"] = str(tmp_path / "record.json")
    return env


class Serving:
    """`thinkchain serve ...` running in the background, its output read line by line."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [THINKCHAIN, "serve", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.stdout: queue.Queue[str] = queue.Queue()
        self.stderr: list[str] = []
        threading.Thread(target=self._pump, args=(self.proc.stdout, self.stdout.put)).start()
        threading.Thread(target=self._pump, args=(self.proc.stderr, self.stderr.append)).start()

    @staticmethod
    def _pump(stream, put) -> None:
        for line in stream:
            put(line.rstrip("\n"))

    def first_line(self, timeout: float = 60.0) -> str:
        try:
            return self.stdout.get(timeout=timeout)
        except queue.Empty:
            self.proc.kill()
            pytest.fail("no URL printed; stderr:\n" + "\n".join(self.stderr))

    def wait(self, timeout: float = 60.0) -> int:
        return self.proc.wait(timeout=timeout)


@pytest.mark.parametrize("stop_with", [signal.SIGINT, signal.SIGTERM])
def test_serve_vllm_runs_the_seeds_command_prints_the_url_and_stops_cleanly(
    fake_vllm, tmp_path, stop_with
):
    model_dir = tmp_path / "qwen" / "Qwen2.5-7B-Instruct"
    model_dir.mkdir(parents=True)
    port = serve.free_port()
    serving = Serving(
        ["--engine", "vllm", "--model", str(model_dir), "--port", str(port), "--no-gpu-check",
         "--", "--distributed-executor-backend", "ray", "--fake-child"],
        fake_vllm,
    )  # fmt: skip
    url = serving.first_line()
    assert url == f"http://127.0.0.1:{port}/v1"
    assert serve.list_models(url) == ["Qwen2.5-7B-Instruct"]
    record = json.loads(Path(fake_vllm["FAKE_ENGINE_RECORD"]).read_text())
    assert record["argv"] == [
        "--model", str(model_dir),
        "--served-model-name", "Qwen2.5-7B-Instruct",
        "--max-model-len", "32768",
        "--port", str(port),
        "--distributed-executor-backend", "ray", "--fake-child",
    ]  # fmt: skip
    procs = tree(serving.proc.pid)[1:]
    assert len(procs) >= 2  # the engine and its child

    serving.proc.send_signal(stop_with)  # what Ctrl-C (or a service manager) does
    assert serving.wait() == 0
    assert all_gone(procs)
    assert serve.port_is_free("127.0.0.1", port)
    stderr = "\n".join(serving.stderr)
    assert "ready:" in stderr and "stopping the server" in stderr


def test_serve_reports_an_engine_that_dies_while_starting(fake_vllm, tmp_path):
    port = serve.free_port()
    serving = Serving(
        ["--engine", "vllm", "--model", str(tmp_path), "--port", str(port), "--no-gpu-check",
         "--quiet", "--", "--fake-exit-early", "7"],
        fake_vllm,
    )  # fmt: skip
    assert serving.wait() == 1
    stderr = "\n".join(serving.stderr)
    assert "exited with code 7 before it was ready" in stderr
    assert "CUDA out of memory" in stderr
    assert "Traceback" not in stderr
    assert serving.stdout.empty()  # no URL for a server that is not there


def test_an_engine_does_not_outlive_a_serve_command_killed_outright(fake_vllm, tmp_path):
    port = serve.free_port()
    serving = Serving(
        ["--engine", "vllm", "--model", str(tmp_path), "--port", str(port), "--no-gpu-check",
         "--quiet"],
        fake_vllm,
    )  # fmt: skip
    serving.first_line()
    engine = tree(serving.proc.pid)[1:]
    serving.proc.kill()  # SIGKILL: no handler of ours runs
    serving.wait()
    gone = all_gone(engine)
    for proc in engine:  # tidy up even when the assertion below fails
        if proc.is_running():
            proc.kill()
    assert gone
    assert serve.port_is_free("127.0.0.1", port)
