"""`thinkchain serve --engine llama.cpp` with the small embedded model, end to end: the server
starts on a free port, `thinkchain ask --base-url` runs a chain through it with the step schema
enforced in the server's own dialect, Ctrl-C stops it, and no process is left behind."""

from __future__ import annotations

import asyncio
import json
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

import psutil
import pytest

from thinkchain.chain.backend import GenerationRequest, TextChunk
from thinkchain.chain.steps import STEP_SCHEMA
from thinkchain.models import serve
from thinkchain.models.backends.openai_compat import (
    OpenAICompatBackend,
    forget_dialects,
    remembered_dialect,
)

THINKCHAIN = str(Path(sys.executable).with_name("thinkchain"))
QUESTION = "How many letters r are in the word strawberry?"


def read_lines(stream, sink) -> None:
    for line in stream:
        sink(line.rstrip("\n"))


def test_serve_llamacpp_then_ask_over_http_then_stop_leaves_nothing(small_model_path):
    port = serve.free_port()
    server = subprocess.Popen(
        [THINKCHAIN, "serve", "--engine", "llama.cpp", "--model-path", str(small_model_path),
         "--port", str(port), "--max-model-len", "4096", "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    stdout: queue.Queue[str] = queue.Queue()
    stderr: list[str] = []
    threading.Thread(target=read_lines, args=(server.stdout, stdout.put), daemon=True).start()
    threading.Thread(target=read_lines, args=(server.stderr, stderr.append), daemon=True).start()
    procs: list[psutil.Process] = []
    try:
        try:
            url = stdout.get(timeout=240)
        except queue.Empty:
            pytest.fail("the server never became ready:\n" + "\n".join(stderr))
        assert url == f"http://127.0.0.1:{port}/v1"
        procs = psutil.Process(server.pid).children(recursive=True)
        assert procs, "the engine runs as a child process"
        served = "qwen2.5-coder-0.5b-instruct-q4_k_m"
        assert serve.list_models(url) == [served]

        # The step schema reaches llama-cpp-python's server in the one dialect it enforces
        # (it answers `json_schema` with an error 500).
        forget_dialects()
        backend = OpenAICompatBackend(url)
        request = GenerationRequest(
            messages=[{"role": "user", "content": "Describe one reasoning step as JSON."}],
            max_tokens=40,
            schema=STEP_SCHEMA,
        )

        async def first_text() -> str:
            return "".join(
                [c.text async for c in backend.generate(request) if isinstance(c, TextChunk)]
            )

        assert asyncio.run(first_text()).lstrip().startswith("{")
        assert remembered_dialect(url, served) == "json_object_schema"

        # A whole chain over HTTP, from the command line.
        ask = subprocess.run(
            [THINKCHAIN, "ask", "--base-url", url, "--max-steps", "2", "--min-steps", "1",
             "--max-tokens", "120", "--json", QUESTION],
            capture_output=True,
            text=True,
            timeout=600,
        )  # fmt: skip
        assert ask.returncode == 0, ask.stderr
        doc = json.loads(ask.stdout)
        assert doc["status"] == "completed"
        assert 1 <= len(doc["steps"]) <= 2
        for step in doc["steps"]:
            assert step["title"].strip() and step["content"].strip()
            assert step["next_action"] in ("continue", "final_answer")
        assert doc["answer"].strip()

        server.send_signal(signal.SIGINT)  # Ctrl-C
        assert server.wait(timeout=60) == 0
    finally:
        if server.poll() is None:  # the test failed part way: stop it the polite way first
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    _, alive = psutil.wait_procs(procs, timeout=10)
    assert not alive, f"left behind: {alive}"
    assert serve.port_is_free("127.0.0.1", port)
    assert "stopped" in "\n".join(stderr)
