"""Bad input on every entry point is a clear OpenAI-shaped 400 (or 404/405), never a 500."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from thinkchain.models.backends.scripted import ScriptedBackend
from thinkchain.testing.fake_openai import FakeOpenAIServer

from .conftest import ServerThread

VARIANT = "fake-model-thinkchain"


def post(proxy: ServerThread, body: Any = None, raw: bytes | None = None) -> httpx.Response:
    url = f"{proxy.url}/v1/chat/completions"
    if raw is not None:
        return httpx.post(url, content=raw, headers={"Content-Type": "application/json"})
    return httpx.post(url, json=body)


def ask(content: Any, **extra: Any) -> dict[str, Any]:
    return {"model": VARIANT, "messages": [{"role": "user", "content": content}], **extra}


def assert_openai_error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"] and "Traceback" not in error["message"]
    return error


BAD_BODIES = {
    "empty question": ask(""),
    "whitespace question": ask("   \n\t  "),
    "control characters only": ask("\x00\x01\x07\x1b"),
    "no messages": {"model": VARIANT, "messages": []},
    "messages not a list": {"model": VARIANT, "messages": "hi"},
    "last message not the user's": {
        "model": VARIANT,
        "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}],
    },
    "unknown role": {"model": VARIANT, "messages": [{"role": "wizard", "content": "hi"}]},
    "image instead of text": ask([{"type": "image_url", "image_url": {"url": "http://x"}}]),
    "negative max_steps": ask("hi", thinkchain={"max_steps": -3}),
    "zero max_steps": ask("hi", thinkchain={"max_steps": 0}),
    "huge max_steps": ask("hi", thinkchain={"max_steps": 10**12}),
    "max_steps over the server cap": ask("hi", thinkchain={"max_steps": 51}),
    "max_steps not a number": ask("hi", thinkchain={"max_steps": "many"}),
    "min_steps above max_steps": ask("hi", thinkchain={"max_steps": 2, "min_steps": 5}),
    "unknown lang": ask("hi", thinkchain={"lang": "klingon"}),
    "unknown mode": ask("hi", thinkchain={"mode": "telepathy"}),
    "unknown strategy": ask("hi", thinkchain={"strategy": "guess"}),
    "k over the cap": ask("hi", thinkchain={"strategy": "sc", "k": 9}),
    "unknown option": ask("hi", thinkchain={"max_stepz": 3}),
    "options not an object": ask("hi", thinkchain=[1, 2]),
    "temperature out of range": ask("hi", temperature=7),
    "n above 1": ask("hi", n=3),
    "model missing": {"messages": [{"role": "user", "content": "hi"}]},
    "model not a string": {"model": 42, "messages": [{"role": "user", "content": "hi"}]},
    "body an array": [1, 2, 3],
    "body a string": "hello",
}


@pytest.mark.parametrize("case", list(BAD_BODIES))
def test_bad_bodies_are_400(proxy: ServerThread, fake: FakeOpenAIServer, case: str) -> None:
    error = assert_openai_error(post(proxy, BAD_BODIES[case]), 400)
    assert error["type"] == "invalid_request_error"
    assert fake.chat_requests() == []  # refused before anything was generated


@pytest.mark.parametrize(
    "raw",
    [
        b'{"model": "fake-model-thinkchain", "messages": [{"role": "user", "content": "\xff"}]}',
        b"\xc3\x28 not utf-8",
        b'{"model": "fake-model-thinkchain", "messages": [',
        b"",
        b'{"model": "x", "messages": [{"role": "user", "content": "a\x01b"}]}',
        b"[" * 100_000,
    ],
    ids=["invalid utf-8 in a string", "invalid utf-8", "truncated", "empty", "raw control", "deep"],
)
def test_unreadable_bodies_are_400(proxy: ServerThread, raw: bytes) -> None:
    error = assert_openai_error(post(proxy, raw=raw), 400)
    assert "body" in error["message"]


def test_error_messages_say_what_is_wrong(proxy: ServerThread) -> None:
    error = assert_openai_error(post(proxy, ask("hi", thinkchain={"lang": "klingon"})), 400)
    assert error["param"] == "thinkchain.lang"
    error = assert_openai_error(post(proxy, ask("  ")), 400)
    assert error["message"] == "the question is empty"
    assert error["param"] == "messages.0.content"


def test_lone_surrogates_are_replaced_not_a_crash(
    proxy: ServerThread, fake: FakeOpenAIServer
) -> None:
    raw = b'{"model": "fake-model-thinkchain", "messages": [{"role": "user", "content": "A\\ud800?"'
    raw += b"}]}"
    response = post(proxy, raw=raw)
    assert response.status_code == 200
    sent = fake.chat_requests()[0]["messages"][-1]["content"]
    assert sent.startswith("A") and "\ud800" not in sent  # replaced, so it can be encoded


def test_control_characters_are_removed_from_the_question(
    proxy: ServerThread, fake: FakeOpenAIServer
) -> None:
    assert post(proxy, ask("What\x00 is\x07 2+2?")).status_code == 200
    assert fake.chat_requests()[0]["messages"][-1]["content"] == "What is 2+2?"


def test_unknown_paths_and_methods_are_openai_shaped(proxy: ServerThread) -> None:
    assert_openai_error(httpx.get(f"{proxy.url}/v1/nothing"), 404)
    assert_openai_error(httpx.get(f"{proxy.url}/v1/chat/completions"), 405)


def test_question_larger_than_the_model_context_is_400_before_any_generation(
    start_proxy: Any,
) -> None:
    backend = ScriptedBackend(script=[], model_name="tiny", context_tokens=200)
    proxy = start_proxy(local_backend=backend)
    body = {"model": "tiny-thinkchain", "messages": [{"role": "user", "content": "word " * 2000}]}
    for stream in (False, True):
        error = assert_openai_error(post(proxy, {**body, "stream": stream}), 400)
        assert error["code"] == "context_length_exceeded"
        assert "context" in error["message"]
    assert backend.requests == []  # nothing was generated


def test_question_over_the_character_limit_is_400(proxy: ServerThread) -> None:
    error = assert_openai_error(post(proxy, ask("y" * 40_000)), 400)
    assert "limit" in error["message"]
