"""The in-process model behind the proxy, and how chain events become reasoning text."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from thinkchain import Chain, ChainSettings
from thinkchain.chain.backend import GenerationRequest
from thinkchain.models.backends.scripted import Reply, ScriptedBackend, step_json
from thinkchain.proxy.reasoning import (
    Content,
    Finished,
    Reasoning,
    RunTranslator,
)

from .helpers import QUESTION, client

FAST = {"mode": "iterative", "retry_base_delay": 0.0, "retry_max_delay": 0.0}


def by_purpose(request: GenerationRequest) -> Any:
    if request.purpose == "plain":
        return Reply("Hello from the local model.", delay=0.001)
    if request.purpose == "answer":
        return "It is 42."
    done = sum(1 for m in request.messages if m["role"] == "assistant")
    return step_json(f"T{done + 1}", f"C{done + 1}.", "final_answer" if done >= 2 else "continue")


def local_backend() -> ScriptedBackend:
    return ScriptedBackend(script=[by_purpose], repeat_last=True, model_name="local")


def test_the_local_model_is_served_as_itself_and_as_a_reasoning_variant(start_proxy: Any) -> None:
    backend = local_backend()
    proxy = start_proxy(local_backend=backend)
    api = client(proxy.url)
    assert [m.id for m in api.models.list().data] == ["local", "local-thinkchain"]

    plain = api.chat.completions.create(model="local", messages=QUESTION)
    assert plain.choices[0].message.content == "Hello from the local model."
    assert plain.usage is not None and plain.usage.completion_tokens > 0
    streamed = api.chat.completions.create(
        model="local", messages=QUESTION, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(streamed)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from the local model."
    assert chunks[-1].usage is not None

    reply = api.chat.completions.create(model="local-thinkchain", messages=QUESTION)
    assert reply.choices[0].message.content == "It is 42."
    assert reply.choices[0].message.reasoning_content.startswith("**Step 1: T1**\nC1.")  # type: ignore[attr-defined]


def test_an_unknown_name_next_to_the_local_model_is_404(start_proxy: Any) -> None:
    proxy = start_proxy(local_backend=ScriptedBackend(script=[], model_name="tiny"))
    with pytest.raises(openai.NotFoundError) as caught:
        client(proxy.url).chat.completions.create(model="tiny-other", messages=QUESTION)
    assert caught.value.body["code"] == "model_not_found"  # type: ignore[index]


async def events_of(backend: ScriptedBackend, **settings: Any) -> list[Any]:
    chain = Chain(backend, ChainSettings(**{**FAST, **settings}))
    return [event async for event in chain.astream("What is 6 * 7?")]


def translate(events: list[Any]) -> tuple[str, str, Finished]:
    translator = RunTranslator()
    items = [item for event in events for item in translator.feed(event)]
    reasoning = "".join(i.text for i in items if isinstance(i, Reasoning))
    content = "".join(i.text for i in items if isinstance(i, Content))
    finished = items[-1]
    assert isinstance(finished, Finished)
    return reasoning, content, finished


async def test_streamed_reasoning_reads_exactly_like_the_finished_steps() -> None:
    reasoning, content, finished = translate(await events_of(local_backend()))
    assert reasoning == finished.outcome.reasoning
    assert reasoning == "**Step 1: T1**\nC1.\n\n**Step 2: T2**\nC2.\n\n**Step 3: T3**\nC3."
    assert content == "It is 42."


async def test_a_retried_step_leaves_a_note_and_starts_over() -> None:
    backend = ScriptedBackend(
        script=[
            '{"title": "Broken", "content": "half a step',  # streams, then fails to parse
            step_json("Fixed", "Whole step.", "final_answer"),
            "Done.",
        ]
    )
    reasoning, content, finished = translate(await events_of(backend, min_steps=1))
    assert "**Step 1: Broken**\nhalf a step\n\n(retrying step 1:" in reasoning
    assert reasoning.endswith("\n\n**Step 1: Fixed**\nWhole step.")
    assert finished.outcome.reasoning == "**Step 1: Fixed**\nWhole step."  # the final record
    assert content == "Done."


async def test_a_retried_answer_is_set_apart_in_the_content() -> None:
    backend = ScriptedBackend(
        script=[
            step_json("Only", "One step.", "final_answer"),
            Reply("aaaa " * 400),  # degenerates: the guard cuts it and the answer is retried
            "The answer.",
        ]
    )
    reasoning, content, _ = translate(await events_of(backend, min_steps=1))
    assert "(retrying the answer:" in reasoning
    assert content.endswith("\n\nThe answer.")
