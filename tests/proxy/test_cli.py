"""``thinkchain proxy`` as a user runs it: a real process, real ports, its own logs."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import openai
import pytest

from thinkchain.testing.fake_openai import FakeOpenAIServer

from .helpers import QUESTION, client, wait_until

# The installed command, run with this interpreter (the venv's bin need not be on PATH).
THINKCHAIN = [sys.executable, "-c", "from thinkchain.cli import main; main()"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def proxy_process(*args: str, env: dict[str, str] | None = None) -> Iterator[tuple[str, list]]:
    port = free_port()
    command = [*THINKCHAIN, "proxy", "--port", str(port), *args]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **(env or {})},
    )
    url = f"http://127.0.0.1:{port}"
    output: list[str] = []

    def up() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"the proxy exited: {process.stdout.read()}")  # type: ignore[union-attr]
        try:
            return httpx.get(f"{url}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(up, "the proxy to listen", timeout=60)
        yield url, output
    finally:
        process.send_signal(signal.SIGINT)
        try:
            out, _ = process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            out, _ = process.communicate()
        output.append(out)


def test_the_command_serves_the_upstream_with_keys_from_a_file_and_logs_no_key(
    tmp_path: Path,
) -> None:
    keys = tmp_path / "keys"
    keys.write_text("CLI-CLIENT-KEY-a1\n", encoding="utf-8")
    with (
        FakeOpenAIServer(require_key="CLI-UPSTREAM-KEY-b2") as fake,
        proxy_process(
            "--upstream",
            fake.url,
            "--api-keys-file",
            str(keys),
            "--log-level",
            "debug",
            env={"THINKCHAIN_API_KEY": "CLI-UPSTREAM-KEY-b2"},
        ) as (url, output),
    ):
        api = client(url, "CLI-CLIENT-KEY-a1")
        reply = api.chat.completions.create(model="fake-model-thinkchain", messages=QUESTION)
        assert reply.choices[0].message.content == "The answer is 42."
        with pytest.raises(openai.AuthenticationError):
            client(url, "CLI-WRONG-KEY-c3").models.list()
    log = "".join(output)
    assert "thinkchain proxy on" in log and "auth on (1 key)" in log
    assert "POST /v1/chat/completions" in log  # the access log is there
    for secret in ("CLI-CLIENT-KEY-a1", "CLI-UPSTREAM-KEY-b2", "CLI-WRONG-KEY-c3"):
        assert secret not in log


def test_the_demo_model_needs_no_model_at_all() -> None:
    with proxy_process("--demo") as (url, _):
        api = client(url)
        assert [m.id for m in api.models.list().data] == ["demo", "demo-thinkchain"]
        reply = api.chat.completions.create(
            model="demo-thinkchain",
            messages=[{"role": "user", "content": "How many r in strawberry?"}],
        )
        assert "3" in (reply.choices[0].message.content or "")


def test_an_empty_keys_file_is_a_clear_error(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.write_text("# nobody yet\n", encoding="utf-8")
    done = subprocess.run(
        [*THINKCHAIN, "proxy", "--demo", "--api-keys-file", str(keys)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "holds no key" in done.stderr


def test_code_steps_are_served_only_when_the_operator_turns_them_on() -> None:
    with proxy_process("--demo") as (url, output):
        assert httpx.get(f"{url}/health", timeout=10).json()["tools"] == []
    assert "code steps off" in "".join(output)
    with proxy_process("--demo", "--tools", "python") as (url, output):
        assert httpx.get(f"{url}/health", timeout=10).json()["tools"] == ["python"]
        variant = client(url).models.retrieve("demo-thinkchain")
        assert variant.model_extra["thinkchain"] == {"tools": ["python"]}  # type: ignore[index]
    assert "code steps on (python)" in "".join(output)


def test_an_unknown_tool_is_a_clear_error() -> None:
    done = subprocess.run(
        [*THINKCHAIN, "proxy", "--demo", "--tools", "bash"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "unknown tool 'bash'" in done.stderr
