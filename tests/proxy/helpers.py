"""Small helpers shared by the proxy tests."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import openai

from thinkchain.testing.fake_openai import FakeItem, FakeReply, default_responder

QUESTION = [{"role": "user", "content": "What is 6 * 7?"}]
# The scripted demo model's question and answer (thinkchain.models.backends.scripted.demo_backend).
DEMO_QUESTION = [{"role": "user", "content": "How many r in strawberry?"}]
DEMO_ANSWER = "There are **3** letters r in *strawberry* (positions 3, 8 and 9)."


def client(url: str, key: str = "no-key") -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=30)


def async_client(url: str, key: str = "no-key") -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=30)


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    """Poll until ``condition`` holds; a bound on waiting, not a timing assertion."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"still waiting for: {what}")
        time.sleep(0.02)


def health(url: str) -> dict[str, Any]:
    return httpx.get(f"{url}/health", timeout=10).json()


def wants_step(body: dict[str, Any]) -> bool:
    fmt = body.get("response_format") or {}
    return fmt.get("type") in ("json_schema", "json_object") or "guided_json" in body


def slow_steps(delay: float = 0.05, words: int = 300) -> Callable[[dict[str, Any]], FakeItem]:
    """Steps that take a long time to stream (so a test can act while one is in flight)."""

    def responder(body: dict[str, Any]) -> FakeItem:
        if wants_step(body):
            content = " ".join(["thinking"] * words)
            text = json.dumps({"title": "Slow", "content": content, "next_action": "continue"})
            return FakeReply(text, chunk_size=8, delay=delay)
        return default_responder(body)

    return responder


def sse_events(raw: bytes) -> list[Any]:
    """The data of each server-sent event, JSON-decoded except ``[DONE]``."""
    out: list[Any] = []
    for block in raw.decode().split("\n\n"):
        for line in block.splitlines():
            if line.startswith("data: "):
                data = line[len("data: ") :]
                out.append(data if data == "[DONE]" else json.loads(data))
    return out


def demo_reasoning(url: str, key: str = "no-key") -> str:
    """The reasoning the proxy itself sends for the demo question, read without any client."""
    reply = httpx.post(
        f"{url}/v1/chat/completions",
        json={"model": "demo-thinkchain", "messages": DEMO_QUESTION},
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    ).json()
    text = str(reply["choices"][0]["message"]["reasoning_content"])
    assert "s-t-r-a-w-b-e-r-r-y" in text and "Counting and checking" in text
    return text
