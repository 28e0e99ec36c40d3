"""The OpenAI-compatible backend against a real fake server on 127.0.0.1."""

from __future__ import annotations

import json
import threading
import time

import pytest

from thinkchain import Chain, ChainSettings
from thinkchain.chain.events import ChainFailed, Retry
from thinkchain.chain.steps import STEP_SCHEMA
from thinkchain.models.backends.openai_compat import (
    OpenAICompatBackend,
    forget_dialects,
    parse_retry_after,
    remembered_dialect,
    split_urls,
)
from thinkchain.testing.fake_openai import (
    FakeCut,
    FakeError,
    FakeOpenAIServer,
    FakeRaw,
    FakeReply,
    FakeStall,
)

# JSON steps, one per call: the requests these tests assert are the iterative shape's.
FAST = ChainSettings(mode="iterative", retry_base_delay=0.01, retry_max_delay=0.05, min_steps=0)


def step(title: str, content: str, action: str = "continue") -> str:
    return json.dumps({"title": title, "content": content, "next_action": action})


@pytest.fixture(autouse=True)
def _fresh_dialects():
    forget_dialects()
    yield
    forget_dialects()


@pytest.fixture
def server():
    with FakeOpenAIServer(models=["Qwen2.5-7B-Instruct"]) as srv:
        yield srv


def run(backend, question="What is 6 times 7?", settings=FAST):
    events = list(Chain(backend, settings).stream(question))
    return events, events[-1].result


def test_streaming_chain_sends_the_exact_bodies(server):
    server.push(step("Multiply", "6 times 7 is 42.", "final_answer"), "42")
    backend = OpenAICompatBackend(server.url, "Qwen2.5-7B-Instruct", "sk-test")
    _, result = run(backend)
    assert result.ok and result.answer.text == "42"
    step_body, answer_body = server.chat_requests()
    assert step_body == {
        "model": "Qwen2.5-7B-Instruct",
        "messages": step_body["messages"],
        "max_tokens": 1000,
        "temperature": 0.2,
        "stream": True,
        "stream_options": {"include_usage": True},
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "reasoning_step", "schema": STEP_SCHEMA, "strict": True},
        },
    }
    assert [m["role"] for m in step_body["messages"]] == ["system", "user"]
    # The final answer is plain text: no response_format at all.
    assert "response_format" not in answer_body
    assert answer_body["messages"][-2] == {
        "role": "assistant",
        "content": step("Multiply", "6 times 7 is 42.", "final_answer"),
    }
    # The key is sent as a bearer token.
    chat = [r for r in server.requests if r.path.endswith("/chat/completions")]
    assert chat[0].headers["authorization"] == "Bearer sk-test"


def test_usage_is_read_from_the_stream_including_cached_tokens(server):
    server.push(
        FakeReply(step("A", "b", "final_answer"), usage=(120, 17), cached_tokens=100),
        FakeReply("42", usage=(150, 2)),
    )
    _, result = run(OpenAICompatBackend(server.url, "m"))
    assert result.steps[0].usage.prompt_tokens == 120
    assert result.steps[0].usage.completion_tokens == 17
    assert result.steps[0].usage.cached_tokens == 100
    assert result.usage.completion_tokens == 19 and not result.usage.estimated


def test_non_streaming_mode_works_too(server):
    server.push(step("A", "b", "final_answer"), "42")
    backend = OpenAICompatBackend(server.url, "m", stream=False)
    _, result = run(backend)
    assert result.ok and result.answer.text == "42"
    assert "stream" not in server.chat_requests()[0]


def test_model_is_discovered_when_not_given(server):
    server.push(step("A", "b", "final_answer"), "42")
    _, result = run(OpenAICompatBackend(server.url))
    assert result.ok
    assert server.chat_requests()[0]["model"] == "Qwen2.5-7B-Instruct"


def test_server_rejecting_json_schema_falls_back_and_remembers_the_dialect():
    # llama-cpp-python's server answers json_schema with a 500 and accepts json_object+schema.
    with FakeOpenAIServer(reject_dialects={"json_schema"}) as srv:
        srv.push(step("A", "first", "continue"), step("B", "second", "final_answer"), "42")
        backend = OpenAICompatBackend(srv.url, "m")
        _, result = run(backend)
        assert result.ok
        formats = [b.get("response_format") for b in srv.chat_requests()]
        assert formats[0]["type"] == "json_schema"
        assert formats[1] == {"type": "json_object", "schema": STEP_SCHEMA}
        # Remembered: the second step goes straight to the accepted dialect.
        assert formats[2] == {"type": "json_object", "schema": STEP_SCHEMA}
        assert formats[3] is None  # the answer
        assert remembered_dialect(srv.url, "m") == "json_object_schema"
        # A new backend object for the same server reuses what was learnt.
        srv.push(step("C", "x", "final_answer"), "1")
        run(OpenAICompatBackend(srv.url, "m"))
        assert srv.chat_requests()[4]["response_format"]["type"] == "json_object"


def test_server_with_no_structured_output_gets_plain_requests():
    rejects = {"json_schema", "json_object_schema", "guided_json", "json_object"}
    with FakeOpenAIServer(reject_dialects=rejects, reject_status=400) as srv:
        srv.push(f"```json\n{step('A', 'b', 'final_answer')}\n```", "42")
        _, result = run(OpenAICompatBackend(srv.url, "m"))
        assert result.ok
        bodies = srv.chat_requests()
        assert "guided_json" in bodies[2]  # the seed's vLLM 0.6 dialect was tried
        assert "response_format" not in bodies[4] and "guided_json" not in bodies[4]
        assert remembered_dialect(srv.url, "m") == "none"


def test_server_rejecting_stream_options_is_asked_again_without_them():
    with FakeOpenAIServer(reject_dialects={"stream_options"}) as srv:
        srv.push(step("A", "b", "final_answer"), "42")
        _, result = run(OpenAICompatBackend(srv.url, "m"))
        assert result.ok
        assert "stream_options" not in srv.chat_requests()[1]
        assert result.usage.estimated  # no usage reported: counted from the stream


def test_429_with_retry_after_is_honoured(server):
    server.push(
        FakeError(429, "rate limited", headers={"Retry-After": "0.3"}),
        step("A", "b", "final_answer"),
        "42",
    )
    started = time.perf_counter()
    events, result = run(OpenAICompatBackend(server.url, "m"))
    retries = [e for e in events if isinstance(e, Retry)]
    assert result.ok and len(retries) == 1
    assert "HTTP 429: rate limited" in retries[0].reason and "0.3 s" in retries[0].reason
    assert time.perf_counter() - started >= 0.3


def test_500_is_retried_and_then_succeeds(server):
    server.push(FakeError(503, "overloaded"), step("A", "b", "final_answer"), "42")
    # Dialect already known, so a 5xx is a transport failure, not a dialect rejection.
    backend = OpenAICompatBackend(server.url, "m", dialect="json_schema")
    events, result = run(backend)
    assert result.ok
    assert "HTTP 503: overloaded" in next(e for e in events if isinstance(e, Retry)).reason


def test_other_4xx_is_not_retried(server):
    server.push(FakeError(401, "invalid api key"))
    backend = OpenAICompatBackend(server.url, "m", dialect="json_schema")
    events, _ = run(backend)
    assert isinstance(events[-1], ChainFailed)
    assert events[-1].error.kind == "backend_error"
    assert "HTTP 401: invalid api key" in events[-1].error.message
    assert events[-1].error.status == 401 and not events[-1].error.timed_out
    assert events[-1].error.server == server.url
    assert len(server.chat_requests()) == 1


def test_context_overflow_from_the_server_is_reported_as_such(server):
    server.push(FakeError(400, "This model's maximum context length is 4096 tokens"))
    backend = OpenAICompatBackend(server.url, "m", dialect="json_schema")
    events, _ = run(backend)
    assert events[-1].error.kind == "context_overflow"


def test_read_timeout_is_retried_then_reported_without_hanging(server):
    server.push(*[FakeStall(5.0, after_headers=True)] * 3)
    backend = OpenAICompatBackend(server.url, "m", read_timeout=0.3, dialect="json_schema")
    settings = FAST.model_copy(update={"max_retries": 2})
    started = time.perf_counter()
    events, result = run(backend, settings=settings)
    elapsed = time.perf_counter() - started
    assert events[-1].error.kind == "backend_error" and events[-1].error.timed_out
    assert "timed out" in events[-1].error.message and result.steps == []
    assert elapsed < 4.5  # three 0.3 s timeouts, not three 5 s stalls


def test_stream_cut_mid_step_is_retried_from_scratch(server):
    server.push(FakeCut('{"title": "Hal'), step("A", "b", "final_answer"), "42")
    backend = OpenAICompatBackend(server.url, "m", dialect="json_schema")
    events, result = run(backend)
    retry = next(e for e in events if isinstance(e, Retry))
    assert "stream was cut" in retry.reason
    assert result.ok and result.steps[0].title == "A"


def test_html_body_is_a_clear_transport_error(server):
    server.push(*[FakeRaw()] * 5)
    backend = OpenAICompatBackend(server.url, "m", dialect="json_schema")
    events, _ = run(backend, settings=FAST.model_copy(update={"max_retries": 1}))
    assert "text/html" in events[-1].error.message


def test_connection_refused_names_the_server_and_the_cause():
    backend = OpenAICompatBackend("http://127.0.0.1:9/v1", "m", connect_timeout=1)
    events, _ = run(backend, settings=FAST.model_copy(update={"max_retries": 1}))
    error = events[-1].error
    assert error.kind == "backend_error" and error.server == "http://127.0.0.1:9/v1"
    assert "connection refused" in error.message


def test_api_key_never_appears_in_repr_or_errors(server):
    server.push(FakeError(401, "bad key"))
    backend = OpenAICompatBackend(server.url, "m", "sk-secret-123", dialect="json_schema")
    events, _ = run(backend)
    assert "sk-secret-123" not in repr(backend)
    assert "sk-secret-123" not in json.dumps(events[-1].result.to_dict())


def test_url_lists_and_retry_after_parsing():
    assert split_urls(["http://a/v1,http://b/v1/", "http://a/v1"]) == ["http://a/v1", "http://b/v1"]
    with pytest.raises(ValueError):
        split_urls("localhost:8000")
    assert parse_retry_after({"retry-after": "2"}) == 2.0
    assert parse_retry_after({"retry-after-ms": "1500"}) == 1.5
    assert parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
    assert parse_retry_after({"retry-after": "soon"}) is None


def test_dns_failure_is_named():
    backend = OpenAICompatBackend("http://no-such-host.invalid/v1", "m", connect_timeout=2)
    events, _ = run(backend, settings=FAST.model_copy(update={"max_retries": 0}))
    assert "does not resolve (DNS)" in events[-1].error.message


def test_429_without_retry_after_backs_off_exponentially(server):
    server.push(
        FakeError(429, "slow down"),
        FakeError(429, "slow down"),
        step("A", "b", "final_answer"),
        "42",
    )
    backend = OpenAICompatBackend(server.url, "m", dialect="json_schema")
    settings = FAST.model_copy(update={"retry_base_delay": 0.1, "retry_max_delay": 1.0})
    started = time.perf_counter()
    events, result = run(backend, settings=settings)
    assert result.ok and len([e for e in events if isinstance(e, Retry)]) == 2
    # 0.1 s then 0.2 s, each with ±25 % jitter.
    assert time.perf_counter() - started >= 0.2


def test_a_body_that_is_not_json_is_a_clear_transport_error(server):
    garbage = FakeRaw(status=200, body=b"this is not json", content_type="application/json")
    server.push(*[garbage] * 3)
    backend = OpenAICompatBackend(server.url, "m", dialect="json_schema", stream=False)
    events, _ = run(backend, settings=FAST.model_copy(update={"max_retries": 2}))
    assert events[-1].error.kind == "backend_error"
    assert events[-1].error.server == server.url


def test_a_server_that_disappears_mid_chain_and_comes_back():
    revived: list[FakeOpenAIServer] = []

    def go_down_then_come_back() -> None:
        first.stop()  # gone in the middle of the chain...
        time.sleep(1.0)
        again = FakeOpenAIServer(
            [step("B", "second step, also new", "final_answer"), "42"], port=port
        )
        revived.append(again.start())  # ...and back a second later, on the same address

    def second_request(body):
        if not going_down.is_set():
            going_down.set()
            threading.Thread(target=go_down_then_come_back, daemon=True).start()
        return FakeCut('{"title": "B')  # the connection drops in the middle of step 2

    going_down = threading.Event()

    first = FakeOpenAIServer(
        [step("A", "first step, which is new", "continue")], responder=second_request
    )
    first.start()
    port = first.port
    backend = OpenAICompatBackend(first.url, "m", dialect="json_schema", connect_timeout=1)
    settings = FAST.model_copy(
        update={"retry_base_delay": 0.5, "retry_max_delay": 1.0, "max_retries": 8}
    )
    try:
        events, result = run(backend, settings=settings)
        retries = [e for e in events if isinstance(e, Retry)]
        assert result.ok, events[-1]
        assert [s.title for s in result.steps] == ["A", "B"] and result.answer.text == "42"
        assert "stream was cut" in retries[0].reason
        # While it is away every try fails (cut, dropped or refused), naming the server.
        assert all(r.reason.startswith(f"{first.url}: ") for r in retries)
        assert all(r.index == 2 for r in retries)
        assert revived and revived[0].chat_requests()  # step 2 came from the server that returned
    finally:
        for server in revived:
            server.stop()


def test_a_server_that_never_accepts_the_connection_hits_the_connect_timeout():
    # A listening socket whose accept queue is full: connection attempts hang (no SYN-ACK).
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        try:
            filler.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        fillers.append(filler)
    try:
        backend = OpenAICompatBackend(
            f"http://127.0.0.1:{port}/v1", "m", connect_timeout=0.5, dialect="json_schema"
        )
        started = time.perf_counter()
        events, _ = run(backend, settings=FAST.model_copy(update={"max_retries": 1}))
        assert "did not answer in time" in events[-1].error.message
        assert time.perf_counter() - started < 10  # two 0.5 s tries, not the 120 s read limit
    finally:
        for sock in [*fillers, listener]:
            sock.close()
