"""A streamed reasoning response reads exactly like the same response not streamed.

The concatenated ``reasoning_content`` deltas equal the message's
reasoning, and the concatenated ``content`` deltas its content, in every chain mode, with and
without code steps, with and without verification.  The model writes what models write:
blank lines around a step's text, newlines after the answer, text after a Python block; the
finished steps and answer keep their text stripped, so the stream must too.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from thinkchain.chain.backend import GenerationRequest
from thinkchain.chain.settings import MODES
from thinkchain.models.backends.scripted import Reply, ScriptedBackend, ScriptItem
from thinkchain.proxy import ProxySettings, create_app

from .conftest import FAST_CHAIN, ServerThread
from .helpers import QUESTION, sse_events

VARIANT = "local-thinkchain"
STEP_MODES = ("single-pass", "iterative", "iterative-text")
CODE = "```python\nprint(6 * 7)\n```"

# Single-pass: the whole chain in one reply; with code steps it stops at the closed block.
CHAIN = (
    "### Step 1: Restate the question\n\n We need the product of 6 and 7.  \n\n\n"
    "### Step 2: Multiply\n6 * 7 = 42.\n\n"
    "### Step 3: Check\n7 * 6 = 42 as well.\n\n"
    "### Answer\n**42**, the product of 6 and 7.\n\n"
)
CODE_CHAIN = (
    "### Step 1: Restate the question\n We need the product of 6 and 7.\n\n"
    f"### Step 2: Compute it with Python\nLet Python multiply.\n{CODE}\n"
)
CODE_REST = (
    "### Step 3: Read the output\nIt printed 42.\n\n\n### Answer\n**42**, as the program printed.\n"
)
# Iterative: one step per call; the second writes Python (and, against the prompt, goes on).
STEPS = [
    ("Restate", "\n  We need the product of 6 and 7.\n\n"),
    ("Multiply", "Let Python multiply.\n{code}\nIt prints the product.\n"),
    ("Check", "7 * 6 = 42 as well.\n"),
]


def step_reply(request: GenerationRequest, code: bool) -> str:
    done = sum(1 for m in request.messages if m["role"] == "assistant")
    title, content = STEPS[min(done, len(STEPS) - 1)]
    content = content.format(code=CODE if code else "6 * 7 = 42.")
    action = "final_answer" if done >= len(STEPS) - 1 else "continue"
    if request.schema is not None:
        return json.dumps({"title": title, "content": content, "next_action": action})
    return f"Title: {title}\n{content}\nNext: {action}"


def reply(request: GenerationRequest) -> ScriptItem:
    """Each mode's reply, in three-character chunks so blank lines split across them."""
    system = str(request.messages[0].get("content", "")) if request.messages else ""
    code = "```python" in system
    if request.purpose == "chain":
        ran = any(m["role"] == "assistant" for m in request.messages)
        text = (CODE_REST if ran else CODE_CHAIN) if code else CHAIN
    elif request.purpose == "step":
        text = step_reply(request, code)
    elif request.purpose == "answer":
        text = "\n The answer is **42**.\n\n"
    elif request.purpose == "cot":
        text = "6 * 7 = 42.\n\nAnswer: 42\n"
    elif request.purpose == "direct":
        text = "42\n"
    elif not code:  # the verification agrees, so the answer stands
        text = "Solving again: 7 * 6 = 42.\nAnswer: 42\n\n"
    elif not any(m["role"] == "assistant" for m in request.messages):
        # With code steps the check computes too (and, against the prompt, goes on past it).
        text = "Solving again with a program.\n```python\nprint(7 * 6)\n```\nIt prints 41.\n"
    else:
        text = "\nThe program printed 42 again.\nAnswer: 42\n\n"
    return Reply(text, chunk_size=3)


@pytest.fixture(scope="module")
def proxy() -> Iterator[ServerThread]:
    backend = ScriptedBackend(script=[reply], repeat_last=True, model_name="local")
    settings = ProxySettings(chain=FAST_CHAIN, tools=("python",))
    server = ServerThread(create_app(settings, local_backend=backend)).start()
    yield server
    server.stop()


def ask(url: str, options: dict[str, Any], *, stream: bool) -> httpx.Response:
    body = {"model": VARIANT, "messages": QUESTION, "stream": stream, "thinkchain": options}
    answer = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=60)
    assert answer.status_code == 200, answer.text
    return answer


def streamed(raw: bytes) -> tuple[str, str, str, dict[str, Any]]:
    """Reasoning under both names, content, and the trace, as a client joins the deltas."""
    reasoning_content, reasoning, content = [], [], []
    trace: dict[str, Any] = {}
    for event in sse_events(raw):
        if event == "[DONE]":
            continue
        trace = event.get("thinkchain", trace)
        for choice in event["choices"]:
            delta = choice["delta"]
            reasoning_content.append(delta.get("reasoning_content") or "")
            reasoning.append(delta.get("reasoning") or "")
            content.append(delta.get("content") or "")
    return "".join(reasoning_content), "".join(reasoning), "".join(content), trace


@pytest.mark.parametrize("verify", [False, True], ids=["plain", "verify"])
@pytest.mark.parametrize("tools", [False, True], ids=["no-code", "code"])
@pytest.mark.parametrize("mode", MODES)
def test_the_stream_joins_up_to_the_reply_not_streamed(
    proxy: ServerThread, mode: str, tools: bool, verify: bool
) -> None:
    options: dict[str, Any] = {"mode": mode, "verify": verify}
    if tools:
        options["tools"] = ["python"]
    message = ask(proxy.url, options, stream=False).json()["choices"][0]["message"]
    reasoning_content, reasoning, content, trace = streamed(
        ask(proxy.url, options, stream=True).content
    )

    assert content == message["content"]
    assert reasoning_content == message["reasoning_content"]
    assert reasoning == "" and "reasoning" not in message  # one name only, by default
    reasoning = reasoning_content

    # The run went the way the case means: steps, code and the check where asked for.
    assert content and not trace["revised"]
    if mode in STEP_MODES:
        assert reasoning.startswith("**Step 1: Restate")
        assert ("```output\n42\n```" in reasoning) == tools
    if verify:
        assert f"**Step {len(trace['steps'])}: " in reasoning and "Solving again" in reasoning
        check = reasoning[reasoning.index("Solving again") :]
        if tools:  # the check's program ran: its output, then what the model said after it
            assert check.index("print(7 * 6)") < check.index("```output\n42\n```")
            assert check.index("```output\n42\n```") < check.index("printed 42 again")
            assert "41" not in check
