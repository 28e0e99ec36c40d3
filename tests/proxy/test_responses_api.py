"""The Responses API (``POST /v1/responses``) through the official ``openai`` client.

A reasoning variant answers with a ``reasoning`` output item whose summary holds the steps and
a ``message`` item holding the answer, whole or streamed in the documented event order; plain
upstream models go through to the upstream's own ``/v1/responses``.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest
from pydantic import SecretStr

from thinkchain.models.backends.scripted import demo_backend
from thinkchain.testing.fake_openai import FakeError, FakeOpenAIServer

from .conftest import ServerThread
from .helpers import async_client, client, slow_steps, sse_events
from .test_openai_client import EXPECTED_REASONING, VARIANT, counted

ANSWER = "The answer is 42."

# What a stream holds, repeats collapsed: the order OpenAI documents and its SDK checks.
EVENT_ORDER = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.reasoning_summary_part.added",
    "response.reasoning_summary_text.delta",
    "response.reasoning_summary_text.done",
    "response.reasoning_summary_part.done",
    "response.output_item.done",
    "response.output_item.added",
    "response.content_part.added",
    "response.output_text.delta",
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
    "response.completed",
]


def collapsed(kinds: list[str]) -> list[str]:
    return [k for i, k in enumerate(kinds) if i == 0 or kinds[i - 1] != k]


def raw_stream(url: str, body: dict[str, Any], key: str = "no-key") -> list[dict[str, Any]]:
    """The events of a streamed response, read without any client, with their SSE names."""
    reply = httpx.post(
        f"{url}/v1/responses",
        json={**body, "stream": True},
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("text/event-stream")
    names = [
        line[len("event: ") :] for line in reply.text.splitlines() if line.startswith("event: ")
    ]
    events = sse_events(reply.content)
    assert names == [e["type"] for e in events]  # each event is named as its type says
    return events


def test_an_answer_with_its_steps_as_a_reasoning_item(
    fake: FakeOpenAIServer, proxy: ServerThread
) -> None:
    fake.responder = counted
    reply = client(proxy.url).responses.create(model=VARIANT, input="What is 6 * 7?")

    assert reply.status == "completed" and reply.model == VARIANT
    assert [item.type for item in reply.output] == ["reasoning", "message"]
    reasoning, message = reply.output
    assert reasoning.type == "reasoning" and message.type == "message"
    assert [part.text for part in reasoning.summary] == [EXPECTED_REASONING]
    assert reply.output_text == ANSWER
    assert message.status == "completed" and message.role == "assistant"
    # Every internal call summed, reasoning tokens apart, as for chat completions.
    assert reply.usage is not None
    assert (reply.usage.input_tokens, reply.usage.output_tokens) == (600, 35)
    assert reply.usage.total_tokens == 635
    assert reply.usage.output_tokens_details.reasoning_tokens == 30
    trace = reply.model_extra["thinkchain"]  # type: ignore[index]
    assert [s["title"] for s in trace["steps"]] == ["Step 1", "Step 2", "Step 3"]


def test_instructions_and_message_items_reach_the_chain(
    fake: FakeOpenAIServer, proxy: ServerThread
) -> None:
    reply = client(proxy.url).responses.create(
        model=VARIANT,
        instructions="Be brief.",
        input=[
            {"role": "user", "content": "My name is Ada."},
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "Hello Ada.", "annotations": []}],
            },
            {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "x"}]},
            {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "What is my name?"}],
            },
        ],
    )
    assert reply.output_text == ANSWER
    assert reply.instructions == "Be brief."
    sent = fake.chat_requests()[0]["messages"]
    # As for chat completions: instructions stay instructions, earlier turns are background
    # in the question's message, earlier steps are left out.
    assert sent[1] == {"role": "system", "content": "Be brief."}
    asked = sent[-1]["content"]
    assert "My name is Ada." in asked and "Hello Ada." in asked
    assert asked.endswith("What is my name?")
    assert not any(m["content"] == "x" for m in sent)


def test_the_stream_goes_in_the_documented_order_and_joins_up_to_the_whole(
    fake: FakeOpenAIServer, proxy: ServerThread
) -> None:
    fake.responder = counted
    events = raw_stream(proxy.url, {"model": VARIANT, "input": "What is 6 * 7?"})

    assert collapsed([e["type"] for e in events]) == EVENT_ORDER
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    summary = "".join(
        e["delta"] for e in events if e["type"] == "response.reasoning_summary_text.delta"
    )
    answer = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert (summary, answer) == (EXPECTED_REASONING, ANSWER)
    final = events[-1]["response"]
    assert final["status"] == "completed"
    assert final["output"][0]["summary"] == [{"type": "summary_text", "text": EXPECTED_REASONING}]
    assert final["output"][1]["content"][0]["text"] == ANSWER
    assert final["usage"]["output_tokens_details"]["reasoning_tokens"] == 30
    # The response is one object throughout: the same id in every lifecycle event.
    assert {e["response"]["id"] for e in events if "response" in e} == {final["id"]}


def test_the_clients_stream_helper_builds_the_final_response(
    fake: FakeOpenAIServer, proxy: ServerThread
) -> None:
    fake.responder = counted
    summary = ""
    with client(proxy.url).responses.stream(model=VARIANT, input="What is 6 * 7?") as stream:
        for event in stream:
            if event.type == "response.reasoning_summary_text.delta":
                summary += event.delta
        final = stream.get_final_response()
    assert summary == EXPECTED_REASONING
    assert final.output_text == ANSWER
    assert final.output[0].type == "reasoning"
    assert final.output[0].summary[0].text == EXPECTED_REASONING


async def test_the_async_client_creates_and_streams(
    fake: FakeOpenAIServer, proxy: ServerThread
) -> None:
    api = async_client(proxy.url)
    reply = await api.responses.create(model=VARIANT, input="What is 6 * 7?")
    assert reply.output_text == ANSWER
    stream = await api.responses.create(model=VARIANT, input="What is 6 * 7?", stream=True)
    kinds = [event.type async for event in stream]
    assert collapsed(kinds) == EVENT_ORDER
    await api.close()


def test_previous_response_id_goes_on_from_a_kept_response(
    fake: FakeOpenAIServer, proxy: ServerThread
) -> None:
    api = client(proxy.url)
    first = api.responses.create(model=VARIANT, input="My name is Ada.", instructions="Be kind.")
    before = len(fake.chat_requests())
    second = api.responses.create(
        model=VARIANT, input="What is my name?", previous_response_id=first.id
    )
    assert second.previous_response_id == first.id
    sent = fake.chat_requests()[before]["messages"]  # the second chain's first step
    asked = sent[-1]["content"]
    # The earlier question and its answer are the background; the earlier instructions are
    # not carried over (as OpenAI's previous_response_id does not carry them).
    assert "My name is Ada." in asked and ANSWER in asked and asked.endswith("What is my name?")
    assert not any(m["content"] == "Be kind." for m in sent)
    # And on from there: the whole conversation is kept.
    before = len(fake.chat_requests())
    third = api.responses.create(model=VARIANT, input="And again?", previous_response_id=second.id)
    assert third.output_text == ANSWER
    asked = fake.chat_requests()[before]["messages"][-1]["content"]
    assert "My name is Ada." in asked and "What is my name?" in asked


def test_a_response_not_kept_cannot_be_gone_on_from(proxy: ServerThread) -> None:
    api = client(proxy.url)
    unkept = api.responses.create(model=VARIANT, input="What is 6 * 7?", store=False)
    for missing in (unkept.id, "resp_never_made"):
        with pytest.raises(openai.BadRequestError) as caught:
            api.responses.create(model=VARIANT, input="And?", previous_response_id=missing)
        assert caught.value.body["param"] == "previous_response_id"  # type: ignore[index]
        assert caught.value.body["code"] == "previous_response_not_found"  # type: ignore[index]


def test_kept_responses_belong_to_the_key_that_made_them(
    fake: FakeOpenAIServer, start_proxy: Any
) -> None:
    proxy = start_proxy(upstreams=(fake.url,), api_keys=(SecretStr("key-a"), SecretStr("key-b")))
    first = client(proxy.url, "key-a").responses.create(model=VARIANT, input="My name is Ada.")
    with pytest.raises(openai.BadRequestError) as caught:
        client(proxy.url, "key-b").responses.create(
            model=VARIANT, input="What is my name?", previous_response_id=first.id
        )
    assert caught.value.body["code"] == "previous_response_not_found"  # type: ignore[index]
    again = client(proxy.url, "key-a").responses.create(
        model=VARIANT, input="What is my name?", previous_response_id=first.id
    )
    assert again.output_text == ANSWER


def test_a_server_that_keeps_nothing_says_so(fake: FakeOpenAIServer, start_proxy: Any) -> None:
    proxy = start_proxy(upstreams=(fake.url,), max_stored_responses=0)
    api = client(proxy.url)
    first = api.responses.create(model=VARIANT, input="What is 6 * 7?")
    with pytest.raises(openai.BadRequestError) as caught:
        api.responses.create(model=VARIANT, input="And?", previous_response_id=first.id)
    assert "keeps no responses" in caught.value.body["message"]  # type: ignore[index]


@pytest.mark.parametrize("stream", [False, True])
def test_max_output_tokens_ends_the_response_incomplete(proxy: ServerThread, stream: bool) -> None:
    body = {"model": VARIANT, "input": "What is 6 * 7?", "max_output_tokens": 10}
    if stream:
        events = raw_stream(proxy.url, body)
        assert events[-1]["type"] == "response.incomplete"
        final = events[-1]["response"]
    else:
        final = client(proxy.url).responses.create(**body).model_dump()  # type: ignore[arg-type]
    # The budget ran out while reasoning: no answer, the steps so far kept, as OpenAI does.
    assert final["status"] == "incomplete"
    assert final["incomplete_details"] == {"reason": "max_output_tokens"}
    assert [item["type"] for item in final["output"]] == ["reasoning"]
    assert final["output"][0]["status"] == "incomplete"
    assert final["thinkchain"]["status"] == "token_budget"


def test_the_time_budget_ends_the_response_incomplete_too(
    fake: FakeOpenAIServer, start_proxy: Any
) -> None:
    fake.responder = slow_steps(delay=0.05, words=40)
    proxy = start_proxy(upstreams=(fake.url,), max_seconds=1.0)
    reply = client(proxy.url).responses.create(model=VARIANT, input="What is 6 * 7?")
    assert reply.status == "incomplete"
    assert reply.incomplete_details is not None
    assert reply.incomplete_details.reason == "max_time"  # type: ignore[comparison-overlap]
    assert reply.model_extra["thinkchain"]["status"] == "time_budget"  # type: ignore[index]


def test_think_tags_or_no_steps_when_the_request_asks(proxy: ServerThread) -> None:
    api = client(proxy.url)
    tagged = api.responses.create(
        model=VARIANT,
        input="What is 6 * 7?",
        extra_body={"thinkchain": {"reasoning_format": "think"}},
    )
    assert [item.type for item in tagged.output] == ["message"]
    assert tagged.output_text.startswith("<think>\n**Step 1**\nReasoning 1.")
    assert tagged.output_text.endswith("\n</think>\n\n" + ANSWER)
    bare = api.responses.create(
        model=VARIANT,
        input="What is 6 * 7?",
        extra_body={"thinkchain": {"reasoning_format": "none"}},
    )
    assert [item.type for item in bare.output] == ["message"]
    assert bare.output_text == ANSWER
    events = raw_stream(
        proxy.url,
        {"model": VARIANT, "input": "What is 6 * 7?", "thinkchain": {"reasoning_format": "think"}},
    )
    text = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert text == tagged.output_text


def test_a_server_started_without_steps_sends_none_here_either(
    fake: FakeOpenAIServer, start_proxy: Any
) -> None:
    proxy = start_proxy(upstreams=(fake.url,), reasoning_format="none")
    reply = client(proxy.url).responses.create(model=VARIANT, input="What is 6 * 7?")
    assert [item.type for item in reply.output] == ["message"]
    # A server set to think tags (for chat apps) still gives Responses clients the item.
    tags = start_proxy(upstreams=(fake.url,), reasoning_format="think")
    reply = client(tags.url).responses.create(model=VARIANT, input="What is 6 * 7?")
    assert [item.type for item in reply.output] == ["reasoning", "message"]


# -- errors -----------------------------------------------------------------------------------


def test_an_unknown_model_is_404(proxy: ServerThread) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client(proxy.url).responses.create(model="no-such-model", input="Hi")
    assert caught.value.body["code"] == "model_not_found"  # type: ignore[index]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": []}, "input"),
        ({"input": [{"role": "assistant", "content": "Hi"}]}, "input.0.role"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}]},
            "input.0.content.0",
        ),
        ({"input": [{"type": "item_reference", "id": "x"}]}, "input.0.type"),
        ({"input": "   "}, "input"),
        ({"input": "Hi", "thinkchain": {"max_steps": -1}}, "thinkchain.max_steps"),
        ({"input": "Hi", "max_output_tokens": 0}, "max_output_tokens"),
        ({"input": "Hi", "background": True}, "background"),
        ({"input": "Hi", "conversation": "conv_1"}, "conversation"),
    ],
)
def test_bad_requests_are_400_naming_the_parameter(
    proxy: ServerThread, body: dict[str, Any], param: str
) -> None:
    reply = httpx.post(f"{proxy.url}/v1/responses", json={"model": VARIANT, **body}, timeout=30)
    assert reply.status_code == 400, reply.text
    error = reply.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param, error


@pytest.mark.parametrize("stream", [False, True])
def test_an_upstream_failure_before_any_output_is_502(
    fake: FakeOpenAIServer, proxy: ServerThread, stream: bool
) -> None:
    fake.responder = lambda body: FakeError(503, "overloaded")
    with pytest.raises(openai.APIStatusError) as caught:
        reply = client(proxy.url).responses.create(model=VARIANT, input="Hi", stream=stream)
        if stream:
            list(reply)  # type: ignore[call-overload]
    assert caught.value.status_code == 502
    assert "overloaded" in caught.value.body["message"]  # type: ignore[index]


def test_a_failure_after_output_is_an_error_event_then_a_failed_response(
    fake: FakeOpenAIServer, proxy: ServerThread
) -> None:
    fake.push(
        json.dumps({"title": "One", "content": "First thought.", "next_action": "continue"}),
        FakeError(503, "upstream fell over"),
        FakeError(503, "upstream fell over"),
    )
    events = raw_stream(proxy.url, {"model": VARIANT, "input": "Hi"})
    error, failed = events[-2], events[-1]
    assert error["type"] == "error" and "upstream fell over" in error["message"]
    assert error["code"] == "upstream_error"
    assert failed["type"] == "response.failed"
    assert failed["response"]["status"] == "failed"
    assert "upstream fell over" in failed["response"]["error"]["message"]
    # What was shown before the failure stays in the failed response.
    (shown,) = failed["response"]["output"]
    assert shown["type"] == "reasoning" and "First thought." in shown["summary"][0]["text"]


# -- plain models -----------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_a_plain_model_goes_through_to_the_upstreams_responses(
    start_proxy: Any, stream: bool
) -> None:
    with FakeOpenAIServer(responses=True) as fake:
        proxy = start_proxy(upstreams=(fake.url,))
        api = client(proxy.url)
        if stream:
            with api.responses.stream(model="fake-model", input="Hi", temperature=0.5) as events:
                text = events.get_final_response().output_text
        else:
            text = api.responses.create(model="fake-model", input="Hi", temperature=0.5).output_text
        assert text == ANSWER
        (sent,) = [r for r in fake.requests if r.path == "/v1/responses"]
        assert sent.body["input"] == "Hi" and sent.body["temperature"] == 0.5  # untouched
        assert fake.chat_requests() == []


def test_an_upstream_without_the_responses_api_is_named(proxy: ServerThread) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client(proxy.url).responses.create(model="fake-model", input="Hi")
    error = caught.value.body
    assert error["code"] == "unsupported_endpoint"  # type: ignore[index]
    assert "answered HTTP 404 to POST /v1/responses" in error["message"]  # type: ignore[index]
    assert "/v1/chat/completions" in error["message"]  # type: ignore[index]


def test_the_in_process_model_as_itself_points_to_chat_completions(start_proxy: Any) -> None:
    proxy = start_proxy(local_backend=demo_backend())
    with pytest.raises(openai.BadRequestError) as caught:
        client(proxy.url).responses.create(model="demo", input="Hi")
    assert "/v1/chat/completions" in caught.value.body["message"]  # type: ignore[index]
    assert "demo-thinkchain" in caught.value.body["message"]  # type: ignore[index]
