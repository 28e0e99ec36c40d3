"""Plain models pass straight through: what the upstream says is what the client gets."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest

from thinkchain.testing.fake_openai import FakeError, FakeOpenAIServer, FakeReply, FakeStall

from .conftest import ServerThread
from .helpers import QUESTION, async_client, client

TOOL_CALLS = [
    {
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
    }
]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]


def _fields(reply: Any) -> dict[str, Any]:
    """What matters in a completion (ids and timestamps are the upstream's to choose)."""
    choice = reply.choices[0]
    return {
        "content": choice.message.content,
        "tool_calls": [c.model_dump() for c in choice.message.tool_calls or []],
        "finish_reason": choice.finish_reason,
        "usage": reply.usage.model_dump() if reply.usage else None,
        "model": reply.model,
    }


def _stream_fields(chunks: list[Any]) -> list[Any]:
    out = []
    for chunk in chunks:
        if not chunk.choices:
            out.append(("usage", chunk.usage.model_dump()))
            continue
        choice = chunk.choices[0]
        calls = [c.model_dump() for c in choice.delta.tool_calls or []]
        out.append((choice.delta.role, choice.delta.content, calls, choice.finish_reason))
    return out


@pytest.mark.parametrize(
    "reply",
    [
        FakeReply("Plain answer, untouched.", usage=(17, 4), cached_tokens=5),
        FakeReply("", tool_calls=TOOL_CALLS, finish_reason="tool_calls", usage=(30, 9)),
        FakeReply("cut short", finish_reason="length", usage=(3, 2)),
    ],
)
def test_non_streaming_fields_are_the_upstreams(
    fake: FakeOpenAIServer, proxy: ServerThread, reply: FakeReply
) -> None:
    fake.push(reply, reply)
    kwargs: dict[str, Any] = {"model": "fake-model", "messages": QUESTION, "tools": TOOLS}
    direct = openai.OpenAI(base_url=fake.url, api_key="x", max_retries=0).chat.completions.create(
        **kwargs
    )
    proxied = client(proxy.url).chat.completions.create(**kwargs)
    assert _fields(proxied) == _fields(direct)


def test_streaming_chunks_are_the_upstreams_tool_calls_and_usage_included(
    fake: FakeOpenAIServer, proxy: ServerThread
) -> None:
    reply = FakeReply("Let me check.", tool_calls=TOOL_CALLS, finish_reason="tool_calls")
    fake.push(reply, reply)
    kwargs: dict[str, Any] = {
        "model": "fake-model",
        "messages": QUESTION,
        "tools": TOOLS,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    direct = list(
        openai.OpenAI(base_url=fake.url, api_key="x", max_retries=0).chat.completions.create(
            **kwargs
        )
    )
    proxied = list(client(proxy.url).chat.completions.create(**kwargs))
    assert _stream_fields(proxied) == _stream_fields(direct)
    assert _stream_fields(proxied)[-1][0] == "usage"


async def test_async_streaming_pass_through(fake: FakeOpenAIServer, proxy: ServerThread) -> None:
    api = async_client(proxy.url)
    stream = await api.chat.completions.create(model="fake-model", messages=QUESTION, stream=True)
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == "The answer is 42."
    await api.close()


def test_the_body_reaches_the_upstream_as_sent_with_the_upstreams_key(
    fake: FakeOpenAIServer, start_proxy: Any
) -> None:
    fake.require_key = "upstream-secret"
    proxy = start_proxy(
        upstreams=(fake.url,), api_keys=("client-secret",), upstream_api_key="upstream-secret"
    )
    body = {
        "model": "fake-model",
        "messages": QUESTION,
        "temperature": 0.3,
        "logit_bias": {"50256": -100},
        "vendor_specific": {"anything": [1, 2, 3]},  # unknown to us, still forwarded
    }
    raw = json.dumps(body, separators=(",", ":")).encode()
    response = httpx.post(
        f"{proxy.url}/v1/chat/completions",
        content=raw,
        headers={"Authorization": "Bearer client-secret", "Content-Type": "application/json"},
    )
    assert response.status_code == 200
    received = fake.requests[-1]
    assert received.body == body
    headers = {k.lower(): v for k, v in received.headers.items()}
    assert headers["authorization"] == "Bearer upstream-secret"
    assert "client-secret" not in json.dumps(received.headers)


def test_upstream_errors_pass_through_with_their_status_and_headers(
    fake: FakeOpenAIServer, proxy: ServerThread
) -> None:
    fake.push(FakeError(429, "slow down", headers={"Retry-After": "7"}))
    with pytest.raises(openai.RateLimitError) as caught:
        client(proxy.url).chat.completions.create(model="fake-model", messages=QUESTION)
    assert caught.value.response.headers["retry-after"] == "7"
    assert caught.value.body["message"] == "slow down"  # type: ignore[index]


def test_pass_through_timeout_is_504(fake: FakeOpenAIServer, start_proxy: Any) -> None:
    proxy = start_proxy(upstreams=(fake.url,), read_timeout=0.3)
    fake.push(FakeStall(seconds=3))
    with pytest.raises(openai.APIStatusError) as caught:
        client(proxy.url).chat.completions.create(model="fake-model", messages=QUESTION)
    assert caught.value.status_code == 504


def test_several_upstreams_one_down_requests_still_answered(start_proxy: Any) -> None:
    with FakeOpenAIServer() as gone:
        down = gone.url
    with FakeOpenAIServer() as up:
        proxy = start_proxy(upstreams=(up.url,))
        # The dead server is listed as serving the model too: it is skipped, not fatal.
        proxy_both = start_proxy(upstreams=(down, up.url))
        for target in (proxy, proxy_both):
            reply = client(target.url).chat.completions.create(
                model="fake-model", messages=QUESTION
            )
            assert reply.choices[0].message.content == "The answer is 42."
