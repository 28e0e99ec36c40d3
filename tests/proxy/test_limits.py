"""Auth, body size, chains at once, and clients that hang up."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from thinkchain.testing.fake_openai import FakeOpenAIServer

from .conftest import ServerThread
from .helpers import QUESTION, client, health, slow_steps, wait_until

VARIANT = "fake-model-thinkchain"


# -- auth -------------------------------------------------------------------------------------


def test_keys_are_required_when_configured(fake: FakeOpenAIServer, start_proxy: Any) -> None:
    proxy = start_proxy(upstreams=(fake.url,), api_keys=("key-one", "key-two"))
    for key in ("key-one", "key-two"):
        assert client(proxy.url, key).models.list().data
    with pytest.raises(openai.AuthenticationError) as caught:
        client(proxy.url, "wrong").chat.completions.create(model=VARIANT, messages=QUESTION)
    assert caught.value.body["code"] == "invalid_api_key"  # type: ignore[index]
    assert caught.value.response.headers["www-authenticate"] == "Bearer"
    missing = httpx.get(f"{proxy.url}/v1/models")
    assert missing.status_code == 401 and "Bearer" in missing.json()["error"]["message"]
    assert fake.chat_requests() == []  # nothing unauthorised reached the upstream
    # Health stays open for load balancers and probes.
    assert httpx.get(f"{proxy.url}/health").status_code == 200


def test_keys_from_a_file(fake: FakeOpenAIServer, start_proxy: Any, tmp_path: Path) -> None:
    from thinkchain.proxy.proxy_settings import read_keys_file

    path = tmp_path / "keys.txt"
    path.write_text("# team keys\nalpha-key\n\n  beta-key  \n", encoding="utf-8")
    proxy = start_proxy(upstreams=(fake.url,), api_keys=read_keys_file(path))
    assert client(proxy.url, "beta-key").models.list().data
    with pytest.raises(openai.AuthenticationError):
        client(proxy.url, "# team keys").models.list()


def test_keys_never_appear_in_logs(
    fake: FakeOpenAIServer, start_proxy: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake.require_key = "UPSTREAM-KEY-7f3a"
    proxy = start_proxy(
        upstreams=(fake.url,), api_keys=("CLIENT-KEY-91bc",), upstream_api_key="UPSTREAM-KEY-7f3a"
    )
    good = client(proxy.url, "CLIENT-KEY-91bc")
    good.chat.completions.create(model=VARIANT, messages=QUESTION)
    list(good.chat.completions.create(model="fake-model", messages=QUESTION, stream=True))
    with pytest.raises(openai.AuthenticationError):
        client(proxy.url, "WRONG-KEY-5e5e").models.list()
    assert "CLIENT-KEY-91bc" not in repr(proxy.server.config.app.state.proxy.settings)
    assert caplog.records  # the proxy and uvicorn did log; none of it holds a key
    for secret in ("CLIENT-KEY-91bc", "UPSTREAM-KEY-7f3a", "WRONG-KEY-5e5e"):
        assert secret not in caplog.text


# -- size and concurrency ---------------------------------------------------------------------


def test_body_over_the_limit_is_413(proxy: ServerThread, start_proxy: Any, fake: Any) -> None:
    small = start_proxy(upstreams=(fake.url,), max_body_bytes=2048)
    big = [{"role": "user", "content": "x" * 10_000}]
    with pytest.raises(openai.APIStatusError) as caught:
        client(small.url).chat.completions.create(model=VARIANT, messages=big)  # type: ignore[arg-type]
    assert caught.value.status_code == 413
    assert caught.value.body["code"] == "request_too_large"  # type: ignore[index]

    def chunks():  # no Content-Length: the size is only known while reading
        for _ in range(10):
            yield b" " * 1000
        yield json.dumps({"model": VARIANT, "messages": QUESTION}).encode()

    response = httpx.post(f"{small.url}/v1/chat/completions", content=chunks())
    assert response.status_code == 413
    assert fake.chat_requests() == []


def test_over_the_chain_limit_is_429_with_retry_after(
    fake: FakeOpenAIServer, start_proxy: Any
) -> None:
    proxy = start_proxy(upstreams=(fake.url,), max_concurrent_chains=1, retry_after_seconds=3)
    fake.responder = slow_steps()
    api = client(proxy.url)
    with api.chat.completions.create(model=VARIANT, messages=QUESTION, stream=True) as first:
        next(iter(first))  # the first chain is running
        with pytest.raises(openai.RateLimitError) as caught:
            api.chat.completions.create(model=VARIANT, messages=QUESTION)
        assert caught.value.response.headers["retry-after"] == "3"
        assert caught.value.body["code"] == "too_many_chains"  # type: ignore[index]
        # Plain models are not chains: they still pass through.
        assert api.chat.completions.create(model="fake-model", messages=QUESTION).choices
    # Closing the stream frees the slot for the next chain.
    wait_until(lambda: health(proxy.url)["chains_running"] == 0, "the slot to be released")
    fake.responder = slow_steps(delay=0, words=3)
    assert api.chat.completions.create(model=VARIANT, messages=QUESTION).choices


# -- disconnects ------------------------------------------------------------------------------


def test_a_client_leaving_mid_stream_cancels_the_chain_and_its_upstream_request(
    fake: FakeOpenAIServer, proxy: ServerThread
) -> None:
    fake.responder = slow_steps()  # the first step alone would stream for about 20 s
    body = {"model": VARIANT, "messages": QUESTION, "stream": True}
    with httpx.stream("POST", f"{proxy.url}/v1/chat/completions", json=body) as response:
        for line in response.iter_lines():
            if "reasoning_content" in line:
                break  # reasoning is flowing; now hang up
    wait_until(lambda: fake.client_disconnects >= 1, "the upstream to see its client go")
    wait_until(lambda: health(proxy.url)["chains_running"] == 0, "the chain to end")
    assert len(fake.chat_requests()) == 1  # no further step was ever asked for


def test_a_client_leaving_a_non_streamed_request_cancels_it_too(
    fake: FakeOpenAIServer, proxy: ServerThread
) -> None:
    fake.responder = slow_steps()
    body = {"model": VARIANT, "messages": QUESTION}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{proxy.url}/v1/chat/completions", json=body, timeout=httpx.Timeout(1.0))
    wait_until(lambda: fake.client_disconnects >= 1, "the upstream to see its client go")
    wait_until(lambda: health(proxy.url)["chains_running"] == 0, "the chain to end")
    assert len(fake.chat_requests()) == 1


def test_a_client_leaving_a_pass_through_stream_closes_the_upstream_request(
    fake: FakeOpenAIServer, proxy: ServerThread
) -> None:
    fake.responder = lambda body: slow_steps()({"response_format": {"type": "json_object"}})
    body = {"model": "fake-model", "messages": QUESTION, "stream": True}
    with httpx.stream("POST", f"{proxy.url}/v1/chat/completions", json=body) as response:
        for line in response.iter_lines():
            if "content" in line:
                break
    wait_until(lambda: fake.client_disconnects >= 1, "the upstream to see its client go")
