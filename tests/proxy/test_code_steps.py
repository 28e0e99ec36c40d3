"""Code steps through the proxy: off unless its operator allows them, then on request."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest

from thinkchain.proxy import ProxySettings
from thinkchain.proxy.code_steps import plan
from thinkchain.proxy.errors import ProxyError
from thinkchain.proxy.schemas import ChatCompletionRequest
from thinkchain.testing.fake_openai import FakeOpenAIServer, FakeReply

from .conftest import FAST_CHAIN, ServerThread
from .helpers import QUESTION, client, health, wants_step

VARIANT = "fake-model-thinkchain"
PYTHON = {"thinkchain": {"tools": ["python"]}}


@pytest.mark.parametrize("stream", [False, True])
def test_a_server_without_code_steps_refuses_a_request_for_them(
    fake: FakeOpenAIServer, proxy: ServerThread, stream: bool
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        reply = client(proxy.url).chat.completions.create(
            model=VARIANT, messages=QUESTION, stream=stream, extra_body=PYTHON
        )
        if stream:
            list(reply)  # type: ignore[call-overload]
    error = caught.value.body
    assert error["code"] == "tools_not_enabled"  # type: ignore[index]
    assert error["param"] == "thinkchain.tools"  # type: ignore[index]
    assert "not enabled" in error["message"] and "--tools python" in error["message"]  # type: ignore[index]
    assert fake.chat_requests() == []  # refused, not run without the tools


def test_an_unknown_tool_is_refused_by_name(start_proxy: Any, fake: FakeOpenAIServer) -> None:
    proxy = start_proxy(upstreams=(fake.url,), tools=("python",))
    with pytest.raises(openai.BadRequestError) as caught:
        client(proxy.url).chat.completions.create(
            model=VARIANT, messages=QUESTION, extra_body={"thinkchain": {"tools": ["bash"]}}
        )
    assert caught.value.body["param"] == "thinkchain.tools.0"  # type: ignore[index]
    assert "python" in caught.value.body["message"]  # type: ignore[index]


def code_then_answer(body: dict[str, Any]) -> FakeReply:
    """A first step that writes Python, a second that reads its output, then the answer."""
    if not wants_step(body):
        return FakeReply("The answer is 42.")
    if not any(m["role"] == "assistant" for m in body["messages"]):
        code = "Let me compute.\n```python\nprint(6 * 7)\n```\n"
        return FakeReply(
            json.dumps({"title": "Compute", "content": code, "next_action": "continue"})
        )
    step = {"title": "Read", "content": "It printed 42.", "next_action": "final_answer"}
    return FakeReply(json.dumps(step))


def test_a_server_with_code_steps_runs_the_code_of_a_request_that_asks(
    start_proxy: Any, fake: FakeOpenAIServer
) -> None:
    fake.responder = code_then_answer
    proxy = start_proxy(
        upstreams=(fake.url,),
        tools=("python",),
        chain=FAST_CHAIN.model_copy(update={"min_steps": 1}),
    )
    reply = client(proxy.url).chat.completions.create(
        model=VARIANT, messages=QUESTION, extra_body=PYTHON
    )
    assert reply.choices[0].message.content == "The answer is 42."
    first = reply.model_extra["thinkchain"]["steps"][0]  # type: ignore[index]
    assert [(r["code"], r["output"]) for r in first["runs"]] == [("print(6 * 7)", "42\n")]
    # The same server leaves the code alone for a request that does not ask for code steps.
    plain = client(proxy.url).chat.completions.create(model=VARIANT, messages=QUESTION)
    assert plain.choices[0].message.content == "The answer is 42."
    assert "runs" not in plain.model_extra["thinkchain"]["steps"][0]  # type: ignore[index]


def request(**options: Any) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate(
        {"model": VARIANT, "messages": QUESTION, "thinkchain": options}
    )


def test_the_chain_gets_the_tools_only_when_asked_and_allowed() -> None:
    allowed = ProxySettings(upstreams=("http://127.0.0.1:1/v1",), tools=("python",))
    assert plan(request(tools=["python"]), allowed).settings.tools == ("python",)
    assert plan(request(tools=["python", "python"]), allowed).settings.tools == ("python",)
    assert plan(request(), allowed).settings.tools == ()
    assert plan(request(tools=[]), allowed).settings.tools == ()
    # The other options still apply next to the tools.
    both = plan(request(tools=["python"], max_steps=4, verify=True), allowed).settings
    assert (both.tools, both.max_steps, both.verify) == (("python",), 4, True)

    with pytest.raises(ProxyError) as caught:
        plan(request(tools=["python"]), ProxySettings(upstreams=("http://127.0.0.1:1/v1",)))
    assert caught.value.status == 400


def test_health_and_the_model_list_say_whether_code_steps_are_on(
    start_proxy: Any, fake: FakeOpenAIServer
) -> None:
    off = start_proxy(upstreams=(fake.url,))
    on = start_proxy(upstreams=(fake.url,), tools=("python",))
    assert health(off.url)["tools"] == []
    assert health(on.url)["tools"] == ["python"]
    for proxy, tools in ((off, []), (on, ["python"])):
        cards = httpx.get(f"{proxy.url}/v1/models", timeout=10).json()["data"]
        variant = next(c for c in cards if c["id"] == VARIANT)
        assert variant["thinkchain"] == {"tools": tools}
        plain = next(c for c in cards if c["id"] == "fake-model")
        assert "thinkchain" not in plain  # the upstream's own card, untouched
