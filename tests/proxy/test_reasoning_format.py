"""Where a chat completion puts the steps: per server (``reasoning_format``) and per request.

The steps go to exactly one place: ``reasoning_content`` (the default), ``reasoning``,
``<think>`` tags before the answer in ``content`` (streamed live, closed before the answer), or
nowhere.  Streamed or not, a client reads the same text.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from thinkchain.proxy.reasoning_format import ChatReasoning
from thinkchain.testing.fake_openai import FakeOpenAIServer, FakeReply

from .conftest import ServerThread
from .helpers import QUESTION, sse_events, wants_step
from .test_openai_client import EXPECTED_REASONING, VARIANT, counted

ANSWER = "The answer is 42."
TAGGED = f"<think>\n{EXPECTED_REASONING}\n</think>\n\n{ANSWER}"
FIELDS = ("reasoning_content", "reasoning")


def ask(url: str, stream: bool, **extra: Any) -> dict[str, Any]:
    """The assistant message as a client puts it together: whole, or joined from the deltas."""
    body = {"model": VARIANT, "messages": QUESTION, "stream": stream, **extra}
    reply = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=30)
    assert reply.status_code == 200, reply.text
    if not stream:
        message: dict[str, Any] = reply.json()["choices"][0]["message"]
        return message
    joined: dict[str, Any] = {"role": "assistant"}
    for event in sse_events(reply.content):
        if event == "[DONE]":
            continue
        for choice in event["choices"]:
            for key, value in choice["delta"].items():
                if key != "role" and value is not None:
                    joined[key] = joined.get(key, "") + value
    return joined


@pytest.fixture
def counting(fake: FakeOpenAIServer) -> FakeOpenAIServer:
    fake.responder = counted
    return fake


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize(
    ("server", "expected"),
    [
        ("reasoning_content", {"content": ANSWER, "reasoning_content": EXPECTED_REASONING}),
        ("reasoning", {"content": ANSWER, "reasoning": EXPECTED_REASONING}),
        ("think", {"content": TAGGED}),
        ("none", {"content": ANSWER}),
    ],
)
def test_the_servers_format_puts_the_steps_in_one_place(
    counting: FakeOpenAIServer,
    start_proxy: Any,
    server: str,
    expected: dict[str, str],
    stream: bool,
) -> None:
    proxy = start_proxy(upstreams=(counting.url,), reasoning_format=server)
    message = ask(proxy.url, stream)
    assert {k: v for k, v in message.items() if k != "role"} == expected


def test_the_default_is_reasoning_content_alone(
    counting: FakeOpenAIServer, proxy: ServerThread
) -> None:
    for stream in (False, True):
        message = ask(proxy.url, stream)
        assert message["reasoning_content"] == EXPECTED_REASONING
        assert "reasoning" not in message


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"thinkchain": {"reasoning_format": "reasoning"}}, "reasoning"),
        ({"thinkchain": {"reasoning_format": "none"}}, None),
        ({"thinkchain": {"reasoning_format": "think"}}, "think"),
        # llama.cpp's server: "deepseek" is reasoning_content, "none" the raw text with tags.
        ({"reasoning_format": "deepseek"}, "reasoning_content"),
        ({"reasoning_format": "none"}, "think"),
        ({"reasoning_format": "auto"}, "reasoning"),  # the server's own (reasoning, here)
        # vLLM's include_reasoning: false.
        ({"include_reasoning": False}, None),
        # The request's own option wins over llama.cpp's field.
        (
            {"reasoning_format": "none", "thinkchain": {"reasoning_format": "reasoning"}},
            "reasoning",
        ),
    ],
)
def test_a_request_chooses_for_itself(
    counting: FakeOpenAIServer, start_proxy: Any, extra: dict[str, Any], expected: str | None
) -> None:
    proxy = start_proxy(upstreams=(counting.url,), reasoning_format="reasoning")
    for stream in (False, True):
        message = ask(proxy.url, stream, **extra)
        if expected == "think":
            assert message["content"] == TAGGED
        else:
            assert message["content"] == ANSWER
        for field in FIELDS:
            assert message.get(field) == (EXPECTED_REASONING if field == expected else None)


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"reasoning_format": "deepseek-legacy"}, "reasoning_format"),
        ({"reasoning_format": "html"}, "reasoning_format"),
        ({"thinkchain": {"reasoning_format": "both"}}, "thinkchain.reasoning_format"),
    ],
)
def test_a_format_not_served_is_400(proxy: ServerThread, extra: dict[str, Any], param: str) -> None:
    body = {"model": VARIANT, "messages": QUESTION, **extra}
    reply = httpx.post(f"{proxy.url}/v1/chat/completions", json=body, timeout=30)
    assert reply.status_code == 400
    assert reply.json()["error"]["param"] == param


def test_think_tags_stream_live_and_close_before_the_answer(
    counting: FakeOpenAIServer, start_proxy: Any
) -> None:
    proxy = start_proxy(upstreams=(counting.url,), reasoning_format="think")
    body = {"model": VARIANT, "messages": QUESTION, "stream": True}
    reply = httpx.post(f"{proxy.url}/v1/chat/completions", json=body, timeout=30)
    pieces = [
        c["choices"][0]["delta"].get("content") or ""
        for c in sse_events(reply.content)
        if c != "[DONE]" and c["choices"]
    ]
    pieces = [p for p in pieces if p]
    # The block opens with the first step and shows each step as it comes, not at the end.
    assert pieces[0].startswith("<think>\n**Step 1**")
    closing = next(i for i, p in enumerate(pieces) if "</think>" in p)
    assert closing > 2
    assert "".join(pieces[:closing]).count("**Step") == 3
    assert "".join(pieces[closing:]) == "\n</think>\n\n" + ANSWER


def test_a_run_that_ends_in_its_steps_still_closes_the_block(
    fake: FakeOpenAIServer, start_proxy: Any
) -> None:
    proxy = start_proxy(upstreams=(fake.url,), reasoning_format="think")
    for stream in (False, True):
        message = ask(proxy.url, stream, max_completion_tokens=10)
        assert message["content"].startswith("<think>\n**Step 1**")
        assert message["content"].endswith("\n</think>\n\n")  # no answer: the budget ran out


def test_step_text_cannot_close_the_block_early(start_proxy: Any) -> None:
    # A model that writes the tag itself, split across stream chunks.
    def responder(body: dict[str, Any]) -> FakeReply:
        if wants_step(body):
            step = {
                "title": "Tags",
                "content": "I write </think> and <think> here.",
                "next_action": "final_answer",
            }
            return FakeReply(json.dumps(step), chunk_size=3)
        return FakeReply(ANSWER)

    with FakeOpenAIServer(responder=responder) as fake:
        proxy = start_proxy(upstreams=(fake.url,), reasoning_format="think", chain=_one_step())
        for stream in (False, True):
            content = ask(proxy.url, stream)["content"]
            assert content.count("</think>") == 1 and content.count("<think>") == 1
            assert content.endswith("</think>\n\n" + ANSWER)
            assert "I write <\u200b/think> and <\u200bthink> here." in content


def _one_step() -> Any:
    from .conftest import FAST_CHAIN

    return FAST_CHAIN.model_copy(update={"min_steps": 1})


def test_a_tag_split_across_deltas_is_held_until_it_can_be_read() -> None:
    steps = ChatReasoning("think")
    out = [steps.reasoning("a </th"), steps.reasoning("ink> b <"), steps.reasoning("x")]
    text = "".join(d["content"] for d in out if d) + steps.content("answer")["content"]
    assert text == "<think>\na <\u200b/think> b <x\n</think>\n\nanswer"
