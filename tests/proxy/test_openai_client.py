"""The official ``openai`` client, sync and async, against the proxy before the fake upstream."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from thinkchain.testing.fake_openai import FakeError, FakeOpenAIServer, FakeReply, FakeStall

from .conftest import ServerThread
from .helpers import QUESTION, async_client, client, wants_step

VARIANT = "fake-model-thinkchain"


def counted(body: dict[str, Any]) -> FakeReply:
    """Steps that cost (100 prompt, 10 completion) tokens each; the answer (300, 5)."""
    if wants_step(body):
        done = sum(1 for m in body["messages"] if m["role"] == "assistant")
        step = {
            "title": f"Step {done + 1}",
            "content": f"Thought number {done + 1}.",
            "next_action": "final_answer" if done >= 2 else "continue",
        }
        return FakeReply(json.dumps(step), usage=(100, 10))
    return FakeReply("The answer is 42.", usage=(300, 5))


EXPECTED_REASONING = (
    # The fake model titles its steps "Step N": one heading each, never "Step 1: Step 1".
    "**Step 1**\nThought number 1.\n\n"
    "**Step 2**\nThought number 2.\n\n"
    "**Step 3**\nThought number 3."
)


def test_models_lists_each_upstream_model_as_itself_and_as_a_reasoning_variant(
    start_proxy: Any,
) -> None:
    with FakeOpenAIServer(models=("alpha", "beta")) as fake:
        proxy = start_proxy(upstreams=(fake.url,))
        models = client(proxy.url).models.list()
        assert [m.id for m in models.data] == [
            "alpha",
            "alpha-thinkchain",
            "beta",
            "beta-thinkchain",
        ]
        assert client(proxy.url).models.retrieve("beta-thinkchain").owned_by == "thinkchain"


def test_variant_names_follow_the_configured_pattern(start_proxy: Any, fake: Any) -> None:
    proxy = start_proxy(upstreams=(fake.url,), variant_pattern="think/{model}")
    api = client(proxy.url)
    assert [m.id for m in api.models.list().data] == ["fake-model", "think/fake-model"]
    reply = api.chat.completions.create(model="think/fake-model", messages=QUESTION)
    assert reply.choices[0].message.content == "The answer is 42."


def test_sync_answer_reasoning_and_usage(fake: FakeOpenAIServer, proxy: ServerThread) -> None:
    fake.responder = counted
    reply = client(proxy.url).chat.completions.create(model=VARIANT, messages=QUESTION)

    message = reply.choices[0].message
    assert message.content == "The answer is 42."
    assert message.reasoning_content == EXPECTED_REASONING  # type: ignore[attr-defined]
    # Under one name only: clients that read both would show every step twice.
    assert getattr(message, "reasoning", None) is None
    assert reply.choices[0].finish_reason == "stop"
    assert reply.model == VARIANT
    # Every internal call summed: three steps and the answer.
    assert reply.usage is not None
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (600, 35)
    assert reply.usage.total_tokens == 635
    assert reply.usage.completion_tokens_details is not None
    assert reply.usage.completion_tokens_details.reasoning_tokens == 30
    trace = reply.model_extra["thinkchain"]  # type: ignore[index]
    assert [s["title"] for s in trace["steps"]] == ["Step 1", "Step 2", "Step 3"]
    assert trace["steps"][0]["content"] == "Thought number 1."
    assert trace["status"] == "completed"


def test_the_question_is_the_last_user_message_and_earlier_messages_are_context(
    fake: FakeOpenAIServer, proxy: ServerThread
) -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "My name is Ada."},
        {"role": "assistant", "content": "Hello Ada."},
        {"role": "user", "content": "What is my name?"},
    ]
    client(proxy.url).chat.completions.create(model=VARIANT, messages=messages)  # type: ignore[arg-type]
    sent = fake.chat_requests()[0]["messages"]
    assert sent[0]["role"] == "system" and "step" in sent[0]["content"].lower()
    # The client's instructions stay instructions; the earlier turns are background inside
    # the one question message, asked as a first question is (no earlier reply to imitate).
    assert sent[1] == messages[0]
    assert [m["role"] for m in sent] == ["system", "system", "user"]
    asked = sent[2]["content"]
    assert "My name is Ada." in asked and "Hello Ada." in asked
    assert asked.endswith("What is my name?")


def test_sync_stream_reasoning_then_answer_then_usage_then_done(
    fake: FakeOpenAIServer, proxy: ServerThread
) -> None:
    fake.responder = counted
    stream = client(proxy.url).chat.completions.create(
        model=VARIANT,
        messages=QUESTION,
        stream=True,
        stream_options={"include_usage": True},
    )
    kinds: list[str] = []
    reasoning, renamed, content = "", "", ""
    usage = None
    finish = None
    trace = None
    for chunk in stream:
        if not chunk.choices:
            usage = chunk.usage
            kinds.append("usage")
            continue
        delta = chunk.choices[0].delta
        piece = getattr(delta, "reasoning_content", None)
        assert getattr(delta, "reasoning", None) is None  # one name only
        if piece:
            reasoning += piece
            kinds.append("reasoning")
        renamed += getattr(delta, "reasoning", None) or ""
        if delta.content:
            content += delta.content
            kinds.append("content")
        if chunk.choices[0].finish_reason:
            finish = chunk.choices[0].finish_reason
            trace = chunk.model_extra.get("thinkchain")  # type: ignore[union-attr]
            kinds.append("finish")

    assert reasoning == EXPECTED_REASONING  # streamed text reads like the non-streamed text
    assert renamed == ""
    assert content == "The answer is 42."
    assert finish == "stop"
    # Steps first (as they are generated), then the answer, then the end, then usage.
    order = [k for i, k in enumerate(kinds) if i == 0 or kinds[i - 1] != k]
    assert order == ["reasoning", "content", "finish", "usage"]
    assert usage is not None and usage.completion_tokens_details is not None
    assert usage.completion_tokens_details.reasoning_tokens == 30
    assert trace is not None and len(trace["steps"]) == 3


def test_without_include_usage_the_stream_sends_no_usage_chunk(proxy: ServerThread) -> None:
    chunks = list(
        client(proxy.url).chat.completions.create(model=VARIANT, messages=QUESTION, stream=True)
    )
    assert all(chunk.choices for chunk in chunks)


async def test_async_client_non_streaming_and_streaming(
    fake: FakeOpenAIServer, proxy: ServerThread
) -> None:
    fake.responder = counted
    api = async_client(proxy.url)
    reply = await api.chat.completions.create(model=VARIANT, messages=QUESTION)
    assert reply.choices[0].message.content == "The answer is 42."
    assert reply.choices[0].message.reasoning_content == EXPECTED_REASONING  # type: ignore[attr-defined]

    stream = await api.chat.completions.create(model=VARIANT, messages=QUESTION, stream=True)
    reasoning, renamed, content = "", "", ""
    async for chunk in stream:
        delta = chunk.choices[0].delta
        reasoning += getattr(delta, "reasoning_content", None) or ""
        renamed += getattr(delta, "reasoning", None) or ""
        content += delta.content or ""
    assert (reasoning, content) == (EXPECTED_REASONING, "The answer is 42.")
    assert renamed == ""
    await api.close()


def test_a_client_that_ignores_reasoning_content_gets_an_ordinary_answer(
    proxy: ServerThread,
) -> None:
    # What a plain chat client does: read content, nothing else.
    stream = client(proxy.url).chat.completions.create(
        model=VARIANT, messages=QUESTION, stream=True
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "The answer is 42."


def test_per_request_options_reach_the_chain(fake: FakeOpenAIServer, proxy: ServerThread) -> None:
    reply = client(proxy.url).chat.completions.create(
        model=VARIANT,
        messages=QUESTION,
        extra_body={"thinkchain": {"max_steps": 1, "lang": "zh"}},
    )
    trace = reply.model_extra["thinkchain"]  # type: ignore[index]
    assert len(trace["steps"]) == 1 and trace["hit_step_limit"] is True
    assert trace["lang"] == "zh"
    assert len(fake.chat_requests()) == 2  # one step, one answer


def test_mode_direct_answers_in_one_call(fake: FakeOpenAIServer, proxy: ServerThread) -> None:
    reply = client(proxy.url).chat.completions.create(
        model=VARIANT, messages=QUESTION, extra_body={"thinkchain": {"mode": "direct"}}
    )
    assert reply.choices[0].message.content == "The answer is 42."
    assert len(fake.chat_requests()) == 1


def test_max_completion_tokens_budget_ends_like_an_openai_reasoning_model(
    proxy: ServerThread,
) -> None:
    reply = client(proxy.url).chat.completions.create(
        model=VARIANT, messages=QUESTION, max_completion_tokens=3
    )
    # The budget ran out while reasoning: no answer, finish_reason "length", steps kept.
    assert reply.choices[0].finish_reason == "length"
    assert reply.choices[0].message.content == ""
    assert reply.model_extra["thinkchain"]["status"] == "token_budget"  # type: ignore[index]


def test_self_consistency_streams_each_sample_and_the_vote(
    fake: FakeOpenAIServer, proxy: ServerThread
) -> None:
    stream = client(proxy.url).chat.completions.create(
        model=VARIANT,
        messages=QUESTION,
        stream=True,
        extra_body={"thinkchain": {"strategy": "sc", "k": 3, "max_steps": 2, "min_steps": 1}},
    )
    reasoning, content, trace = "", "", None
    for chunk in stream:
        delta = chunk.choices[0].delta
        reasoning += getattr(delta, "reasoning_content", None) or ""
        content += delta.content or ""
        trace = chunk.model_extra.get("thinkchain") or trace  # type: ignore[union-attr]
    assert content == "The answer is 42."
    assert reasoning.count("answered 42") >= 2  # early stop may spare the third sample
    assert "Vote: 42" in reasoning and "**Step 1**\nReasoning 1." in reasoning
    assert trace is not None and trace["strategy"] == "sc" and trace["vote"]["winner"] == "42"


# -- errors -----------------------------------------------------------------------------------


def test_unknown_model_is_404(proxy: ServerThread) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client(proxy.url).chat.completions.create(model="no-such-model", messages=QUESTION)
    assert caught.value.body["code"] == "model_not_found"  # type: ignore[index]
    assert caught.value.body["param"] == "model"  # type: ignore[index]


def test_invalid_options_are_400_with_the_parameter_named(proxy: ServerThread) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client(proxy.url).chat.completions.create(
            model=VARIANT, messages=QUESTION, extra_body={"thinkchain": {"max_steps": -1}}
        )
    error = caught.value.body
    assert error["type"] == "invalid_request_error"  # type: ignore[index]
    assert error["param"] == "thinkchain.max_steps"  # type: ignore[index]


@pytest.mark.parametrize("stream", [False, True])
def test_upstream_failure_is_502(fake: FakeOpenAIServer, proxy: ServerThread, stream: bool) -> None:
    fake.responder = lambda body: FakeError(503, "overloaded")
    with pytest.raises(openai.APIStatusError) as caught:
        reply = client(proxy.url).chat.completions.create(
            model=VARIANT, messages=QUESTION, stream=stream
        )
        if stream:
            list(reply)  # type: ignore[call-overload]
    assert caught.value.status_code == 502
    assert caught.value.body["type"] == "upstream_error"  # type: ignore[index]
    assert "overloaded" in caught.value.body["message"]  # type: ignore[index]


@pytest.mark.parametrize("stream", [False, True])
def test_upstream_timeout_is_504(fake: FakeOpenAIServer, start_proxy: Any, stream: bool) -> None:
    proxy = start_proxy(upstreams=(fake.url,), read_timeout=0.3)
    fake.responder = lambda body: FakeStall(seconds=3)
    with pytest.raises(openai.APIStatusError) as caught:
        reply = client(proxy.url).chat.completions.create(
            model=VARIANT, messages=QUESTION, stream=stream
        )
        if stream:
            list(reply)  # type: ignore[call-overload]
    assert caught.value.status_code == 504
    assert caught.value.body["type"] == "upstream_timeout"  # type: ignore[index]


def test_unreachable_upstream_is_502(start_proxy: Any) -> None:
    with FakeOpenAIServer() as gone:
        url = gone.url
    proxy = start_proxy(upstreams=(url,))
    with pytest.raises(openai.APIStatusError) as caught:
        client(proxy.url).chat.completions.create(model=VARIANT, messages=QUESTION)
    assert caught.value.status_code == 502
    with pytest.raises(openai.APIStatusError) as listed:
        client(proxy.url).models.list()
    assert listed.value.status_code == 502


def test_question_larger_than_the_upstream_context_is_400_before_any_answer(
    fake: FakeOpenAIServer, proxy: ServerThread
) -> None:
    fake.responder = lambda body: FakeError(
        400, "This model's maximum context length is 4096 tokens. However, you requested 9000."
    )
    with pytest.raises(openai.BadRequestError) as caught:
        list(
            client(proxy.url).chat.completions.create(model=VARIANT, messages=QUESTION, stream=True)
        )
    assert caught.value.body["code"] == "context_length_exceeded"  # type: ignore[index]
    assert "maximum context length" in caught.value.body["message"]  # type: ignore[index]


def test_failure_after_output_arrives_in_the_stream_openai_shaped(
    fake: FakeOpenAIServer, proxy: ServerThread
) -> None:
    # Step 1 streams, then the upstream fails for good: the SDK raises with our message.
    fake.push(
        json.dumps({"title": "One", "content": "First thought.", "next_action": "continue"}),
        FakeError(503, "upstream fell over"),
        FakeError(503, "upstream fell over"),
    )
    seen = ""
    with pytest.raises(openai.APIError) as caught:
        for chunk in client(proxy.url).chat.completions.create(
            model=VARIANT, messages=QUESTION, stream=True
        ):
            seen += getattr(chunk.choices[0].delta, "reasoning_content", None) or ""
    assert "First thought." in seen
    assert "upstream fell over" in caught.value.message


def test_verify_adds_a_checking_step_to_the_reasoning(proxy: ServerThread) -> None:
    reply = client(proxy.url).chat.completions.create(
        model=VARIANT, messages=QUESTION, extra_body={"thinkchain": {"verify": True}}
    )
    assert reply.choices[0].message.content == "The answer is 42."
    steps = reply.model_extra["thinkchain"]["steps"]  # type: ignore[index]
    assert steps[-1]["title"] == "Verification"
    assert "**Step 4: Verification**" in reply.choices[0].message.reasoning_content  # type: ignore[attr-defined]
