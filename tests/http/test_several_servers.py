"""One chain, several servers: requests are spread, a dead server is skipped until it recovers,
and the chain notices nothing beyond a Retry event.  Real fake servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
import threading

import pytest
from typer.testing import CliRunner

from thinkchain import Chain, ChainSettings
from thinkchain.chain.backend import GenerationRequest, TransportError
from thinkchain.chain.events import ChainCompleted, ChainFailed, Retry
from thinkchain.cli import app
from thinkchain.models.backends.openai_compat import OpenAICompatBackend, forget_dialects
from thinkchain.testing.fake_openai import (
    FakeCut,
    FakeError,
    FakeOpenAIServer,
    FakeReply,
    default_responder,
)

SETTINGS = ChainSettings(
    mode="iterative", min_steps=1, max_steps=5, retry_base_delay=0.01, retry_max_delay=0.05
)
HELLO = GenerationRequest(messages=[{"role": "user", "content": "hello"}], max_tokens=16)


@pytest.fixture(autouse=True)
def _fresh_dialects():
    forget_dialects()
    yield
    forget_dialects()


@pytest.fixture
def closed_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/v1"


async def generate_text(backend: OpenAICompatBackend, request: GenerationRequest = HELLO) -> str:
    return "".join([getattr(c, "text", "") async for c in backend.generate(request)])


def test_a_server_that_dies_mid_run_costs_the_chain_one_retry_and_it_finishes_on_the_other():
    with FakeOpenAIServer() as first, FakeOpenAIServer() as second:

        def dies_during_step_two(body):
            if len(first.chat_requests()) == 2:
                # The process goes away: this stream is cut, and nobody listens any more.
                threading.Thread(target=first.stop).start()
                return FakeCut('{"title": "Step 2", "content": "Halfway', delay=0.1)
            return default_responder(body)

        first.responder = dies_during_step_two
        backend = OpenAICompatBackend([first.url, second.url], "fake-model")
        backend.pool.base_cooldown = 60.0  # it stays dead for the rest of this test
        events = list(Chain(backend, SETTINGS).stream("What is 6 times 7?"))

    result = events[-1].result
    assert isinstance(events[-1], ChainCompleted) and result.ok
    assert not [e for e in events if isinstance(e, ChainFailed)]
    retries = [e for e in events if isinstance(e, Retry)]
    assert len(retries) == 1
    assert retries[0].target == "step" and retries[0].index == 2
    assert first.url in retries[0].reason and "cut" in retries[0].reason
    assert [s.title for s in result.steps] == ["Step 1", "Step 2", "Step 3"]
    assert result.answer.text == "The answer is 42."
    assert len(first.chat_requests()) == 2  # step 1, and the half of step 2
    assert len(second.chat_requests()) == 3  # step 2 again, step 3, the answer


async def test_a_failing_server_is_skipped_until_it_recovers():
    with FakeOpenAIServer() as first, FakeOpenAIServer() as second:
        first.push(FakeError(503, "overloaded"))
        backend = OpenAICompatBackend([first.url, second.url], "fake-model")
        backend.pool.base_cooldown = 0.3
        with pytest.raises(TransportError, match="503"):
            await generate_text(backend)  # the chain would retry this
        assert backend.pool.is_down(first.url)
        await generate_text(backend)
        await generate_text(backend)
        assert (len(first.chat_requests()), len(second.chat_requests())) == (1, 2)
        await asyncio.sleep(0.35)
        # Back from its cool-down, a trial request succeeds and it is preferred again.
        await generate_text(backend)
        await generate_text(backend)
        assert (len(first.chat_requests()), len(second.chat_requests())) == (3, 2)
        assert not backend.pool.is_down(first.url)


async def test_concurrent_requests_are_spread_by_least_outstanding_requests():
    slow = FakeReply("one two three four five six", delay=0.05)
    with (
        FakeOpenAIServer(responder=lambda body: slow) as first,
        FakeOpenAIServer(responder=lambda body: slow) as second,
    ):
        backend = OpenAICompatBackend(f"{first.url},{second.url}", "fake-model")
        texts = await asyncio.gather(*(generate_text(backend) for _ in range(6)))
        assert texts == ["one two three four five six"] * 6
        assert (len(first.chat_requests()), len(second.chat_requests())) == (3, 3)


def test_when_every_server_is_down_the_chain_fails_clearly_after_its_retries(closed_url):
    with FakeOpenAIServer() as gone:
        other = gone.url
    backend = OpenAICompatBackend([closed_url, other], "fake-model", connect_timeout=2)
    settings = SETTINGS.model_copy(update={"max_retries": 3})
    events = list(Chain(backend, settings).stream("What is 6 times 7?"))
    assert isinstance(events[-1], ChainFailed)
    error = events[-1].result.error
    assert error.kind == "backend_error" and "connection refused" in error.message
    assert "gave up after 4 tries" in error.message
    reasons = " ".join(e.reason for e in events if isinstance(e, Retry))
    assert closed_url in reasons and other in reasons  # both were tried


@pytest.mark.parametrize("style", ["comma", "repeated"])
def test_ask_takes_several_base_urls_and_works_around_a_dead_one(closed_url, style):
    with FakeOpenAIServer() as alive:
        if style == "comma":
            urls = ["--base-url", f"{closed_url},{alive.url}"]
        else:
            urls = ["--base-url", closed_url, "--base-url", alive.url]
        result = CliRunner().invoke(
            app,
            [
                "ask",
                *urls,
                "--model",
                "fake-model",
                "--mode",
                "iterative",
                "--min-steps",
                "1",
                "--quiet",
                "What is 6x7?",
            ],
        )
        assert result.exit_code == 0, result.output
        assert "The answer is 42." in result.stdout
        assert len(alive.chat_requests()) >= 3
