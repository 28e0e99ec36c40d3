"""LiteLLM, as installed from PyPI, against the proxy serving the scripted demo model.

LiteLLM surfaces a chat model's thinking as ``message.reasoning_content`` and, streamed, as
``delta.reasoning_content``; it reads ``reasoning`` only when ``reasoning_content`` is absent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import pytest

from thinkchain.models.backends.scripted import demo_backend

from .conftest import ServerThread
from .helpers import DEMO_ANSWER, DEMO_QUESTION, demo_reasoning

MODEL = "openai/demo-thinkchain"  # "openai/": LiteLLM's route for any OpenAI-compatible server


@pytest.fixture(scope="module")
def litellm() -> Iterator[ModuleType]:
    # Read at import: the bundled model-cost map, not the one on the web, and nothing else
    # fetched on LiteLLM's own initiative (its telemetry is opt-in, so already off).
    with pytest.MonkeyPatch.context() as env:
        env.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        env.setenv("LITELLM_OFFLINE_MODE", "true")
        import litellm

        yield litellm


@pytest.fixture
def demo(start_proxy: Callable[..., ServerThread]) -> ServerThread:
    return start_proxy(local_backend=demo_backend())


def call(litellm: ModuleType, url: str, **kwargs: Any) -> Any:
    return litellm.completion(
        model=MODEL,
        api_base=f"{url}/v1",
        api_key="no-key",
        messages=DEMO_QUESTION,
        num_retries=0,
        timeout=30,
        **kwargs,
    )


def thought(chunk: Any) -> str:
    # LiteLLM deletes the attribute from a delta that carries no reasoning: getattr, not ".".
    return getattr(chunk.choices[0].delta, "reasoning_content", None) or ""


def test_litellm_reads_the_answer_and_the_reasoning(
    litellm: ModuleType, demo: ServerThread
) -> None:
    reply = call(litellm, demo.url)
    message = reply.choices[0].message
    assert message.content == DEMO_ANSWER
    assert message.reasoning_content == demo_reasoning(demo.url)
    assert reply.usage.completion_tokens_details.reasoning_tokens > 0


def test_litellm_streams_the_reasoning_then_the_answer(
    litellm: ModuleType, demo: ServerThread
) -> None:
    chunks = list(call(litellm, demo.url, stream=True))
    reasoning = "".join(thought(c) for c in chunks)
    content = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert reasoning == demo_reasoning(demo.url)  # once: not doubled by the second name
    assert content == DEMO_ANSWER
    # LiteLLM's own helper that puts a streamed reply back together keeps the reasoning.
    rebuilt = litellm.stream_chunk_builder(chunks, messages=DEMO_QUESTION)
    assert rebuilt.choices[0].message.reasoning_content == reasoning
    assert rebuilt.choices[0].message.content == DEMO_ANSWER


async def test_litellm_async_client_streams_the_same(
    litellm: ModuleType, demo: ServerThread
) -> None:
    stream = await litellm.acompletion(
        model=MODEL,
        api_base=f"{demo.url}/v1",
        api_key="no-key",
        messages=DEMO_QUESTION,
        stream=True,
        num_retries=0,
        timeout=30,
    )
    reasoning, content = "", ""
    async for chunk in stream:
        reasoning += thought(chunk)
        content += chunk.choices[0].delta.content or ""
    assert (reasoning, content) == (demo_reasoning(demo.url), DEMO_ANSWER)


def test_litellm_gets_the_proxys_error_for_code_steps_it_has_not_enabled(
    litellm: ModuleType, demo: ServerThread
) -> None:
    with pytest.raises(litellm.BadRequestError) as caught:
        call(litellm, demo.url, extra_body={"thinkchain": {"tools": ["python"]}})
    assert "--tools python" in str(caught.value)
