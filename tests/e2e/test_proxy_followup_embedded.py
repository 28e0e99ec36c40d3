"""A multi-turn request to the proxy's reasoning variant, on the real default model.

``thinkchain proxy --model-path … --tools python`` started as an operator starts it; a client
sends a conversation whose last question leans on the earlier turn. The chain must think as for
a first question (titled steps, a program of its own), not copy the earlier bare answer
(issue 27).
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai
import pytest

from thinkchain.sandbox import isolation_report

# Two chains a test on two CPU cores: well within this, but never cut by the default 300 s.
pytestmark = pytest.mark.timeout(900)

THINKCHAIN = Path(sys.executable).parent / "thinkchain"


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def proxy_url(default_model_path, tmp_path):
    port = free_port()
    log = (tmp_path / "proxy.log").open("wb")
    proc = subprocess.Popen(
        [
            str(THINKCHAIN),
            "proxy",
            "--model-path",
            str(default_model_path),
            "--tools",
            "python",
            "--port",
            str(port),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert proc.poll() is None, (tmp_path / "proxy.log").read_text()
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the proxy did not start"
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_a_multi_turn_request_thinks_like_a_first_question(proxy_url):
    if not isolation_report().safe:
        pytest.skip("code steps need the sandbox (bubblewrap)")
    api = openai.OpenAI(base_url=f"{proxy_url}/v1", api_key="none", timeout=600, max_retries=0)
    variant = next(m.id for m in api.models.list().data if m.id.endswith("-thinkchain"))
    messages = [
        {"role": "user", "content": "How many letters r are in the word strawberry?"},
        {"role": "assistant", "content": "There are 3 letters r in the word strawberry."},
        {"role": "user", "content": "And how many in the word raspberry?"},
    ]
    reply = api.chat.completions.create(
        model=variant,
        messages=messages,  # type: ignore[arg-type]
        seed=0,
        extra_body={"thinkchain": {"tools": ["python"]}},
    )
    message = reply.choices[0].message
    reasoning = message.reasoning_content  # type: ignore[attr-defined]
    headings = re.findall(r"^\*\*Step (\d+)(?:: (.+?))?\*\*$", reasoning, re.MULTILINE)
    titled = [title for n, title in headings if title and title != f"Step {n}"]
    assert len(titled) >= 3, reasoning
    # A program about the follow-up's own word ran, and its output is in the reasoning.
    assert re.search(r"```python\n[^`]*raspberry", reasoning), reasoning
    assert "```output\n" in reasoning
    assert message.content and message.content.strip()
