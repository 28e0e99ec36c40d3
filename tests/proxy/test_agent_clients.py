"""Agent frameworks, as installed from PyPI, against the proxy serving the scripted demo model.

* openai-agents: its default model (the Responses API) and ``OpenAIChatCompletionsModel``;
  the steps arrive as a ``ReasoningItem`` whose summary holds them, streamed once.
* pydantic-ai: ``OpenAIChatModel`` and ``OpenAIResponsesModel``; the steps arrive as a
  ``ThinkingPart``, streamed as thinking deltas; on a server that sends ``<think>`` tags the
  chat model reads those as thinking too.
* langchain-openai's ``ChatOpenAI``: it ignores chat completions' reasoning fields; with
  ``use_responses_api=True`` the steps arrive as a reasoning block.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import openai
import pytest

from thinkchain.models.backends.scripted import demo_backend

from .conftest import ServerThread
from .helpers import DEMO_ANSWER, DEMO_QUESTION, demo_reasoning

QUESTION = DEMO_QUESTION[0]["content"]
MODEL = "demo-thinkchain"


@pytest.fixture
def demo(start_proxy: Callable[..., ServerThread]) -> ServerThread:
    return start_proxy(local_backend=demo_backend())


def async_openai(url: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="no-key", max_retries=0, timeout=30)


# -- openai-agents ----------------------------------------------------------------------------


def agent_setup(url: str, chat: bool) -> tuple[Any, Any]:
    from agents import Agent, OpenAIChatCompletionsModel, OpenAIProvider, RunConfig

    client = async_openai(url)
    # Tracing off: it would send the run to OpenAI's servers.
    if chat:
        model = OpenAIChatCompletionsModel(model=MODEL, openai_client=client)
        return Agent(name="t", instructions="Answer.", model=model), RunConfig(
            tracing_disabled=True
        )
    # The default: a model name, resolved by the default provider to its Responses model.
    config = RunConfig(model_provider=OpenAIProvider(openai_client=client), tracing_disabled=True)
    return Agent(name="t", instructions="Answer.", model=MODEL), config


@pytest.mark.parametrize("chat", [False, True], ids=["responses", "chat-completions"])
async def test_openai_agents_reads_the_answer_and_the_steps(demo: ServerThread, chat: bool) -> None:
    from agents import ReasoningItem, Runner

    agent, config = agent_setup(demo.url, chat)
    result = await Runner.run(agent, QUESTION, run_config=config)
    assert result.final_output == DEMO_ANSWER
    reasoning = [item for item in result.new_items if isinstance(item, ReasoningItem)]
    assert len(reasoning) == 1
    assert [part.text for part in reasoning[0].raw_item.summary] == [demo_reasoning(demo.url)]


@pytest.mark.parametrize("chat", [False, True], ids=["responses", "chat-completions"])
async def test_openai_agents_streams_the_steps_once(demo: ServerThread, chat: bool) -> None:
    from agents import Runner

    agent, config = agent_setup(demo.url, chat)
    run = Runner.run_streamed(agent, QUESTION, run_config=config)
    summary, raw_text, answer, items = "", "", "", []
    async for event in run.stream_events():
        if event.type == "raw_response_event":
            kind = event.data.type
            if kind == "response.reasoning_summary_text.delta":
                summary += event.data.delta
            elif kind == "response.reasoning_text.delta":
                raw_text += event.data.delta
            elif kind == "response.output_text.delta":
                answer += event.data.delta
        elif event.type == "run_item_stream_event":
            items.append(event.name)
    assert summary == demo_reasoning(demo.url)
    # Once: the proxy used to send both reasoning_content and reasoning, and openai-agents
    # streamed the steps a second time as reasoning text.
    assert raw_text == ""
    assert answer == DEMO_ANSWER and run.final_output == DEMO_ANSWER
    assert items == ["reasoning_item_created", "message_output_created"]


# -- pydantic-ai ------------------------------------------------------------------------------


def pydantic_agent(url: str, responses: bool) -> Any:
    from pydantic_ai import Agent
    from pydantic_ai.models.openai import OpenAIChatModel, OpenAIResponsesModel
    from pydantic_ai.providers.openai import OpenAIProvider

    provider = OpenAIProvider(base_url=f"{url}/v1", api_key="no-key")
    kind = OpenAIResponsesModel if responses else OpenAIChatModel
    return Agent(kind(MODEL, provider=provider))


@pytest.mark.parametrize("responses", [False, True], ids=["chat", "responses"])
def test_pydantic_ai_reads_a_thinking_part(demo: ServerThread, responses: bool) -> None:
    from pydantic_ai.messages import TextPart, ThinkingPart

    result = pydantic_agent(demo.url, responses).run_sync(QUESTION)
    assert result.output == DEMO_ANSWER
    parts = result.all_messages()[-1].parts
    assert [type(p) for p in parts] == [ThinkingPart, TextPart]
    assert parts[0].content == demo_reasoning(demo.url)


@pytest.mark.parametrize("responses", [False, True], ids=["chat", "responses"])
async def test_pydantic_ai_streams_the_thinking_then_the_text(
    demo: ServerThread, responses: bool
) -> None:
    from pydantic_ai.messages import (
        PartDeltaEvent,
        PartStartEvent,
        TextPart,
        TextPartDelta,
        ThinkingPart,
        ThinkingPartDelta,
    )

    thinking, text, order = "", "", []
    async with pydantic_agent(demo.url, responses).run_stream_events(QUESTION) as events:
        async for event in events:
            if isinstance(event, PartStartEvent):
                if isinstance(event.part, ThinkingPart):
                    thinking += event.part.content
                    order.append("thinking")
                elif isinstance(event.part, TextPart):
                    text += event.part.content
                    order.append("text")
            elif isinstance(event, PartDeltaEvent):
                if isinstance(event.delta, ThinkingPartDelta):
                    thinking += event.delta.content_delta or ""
                elif isinstance(event.delta, TextPartDelta):
                    text += event.delta.content_delta
    assert order == ["thinking", "text"]
    assert (thinking, text) == (demo_reasoning(demo.url), DEMO_ANSWER)


def test_pydantic_ai_reads_think_tags_as_thinking(
    demo: ServerThread, start_proxy: Callable[..., ServerThread]
) -> None:
    from pydantic_ai.messages import TextPart, ThinkingPart

    tags = start_proxy(local_backend=demo_backend(), reasoning_format="think")
    result = pydantic_agent(tags.url, responses=False).run_sync(QUESTION)
    parts = result.all_messages()[-1].parts
    assert [type(p) for p in parts] == [ThinkingPart, TextPart]
    assert parts[0].content.strip() == demo_reasoning(demo.url)
    assert result.output.strip() == DEMO_ANSWER


# -- langchain-openai -------------------------------------------------------------------------


def chat_openai(url: str, responses: bool) -> Any:
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(
        model=MODEL,
        base_url=f"{url}/v1",
        api_key="no-key",  # type: ignore[arg-type]
        max_retries=0,
        use_responses_api=responses,
    )


def langchain_reasoning(blocks: Any) -> str:
    """The summary text of the reasoning blocks in a message's (or chunks') content."""
    if isinstance(blocks, str):
        return ""
    return "".join(
        part.get("text", "")
        for block in blocks
        if isinstance(block, dict) and block.get("type") == "reasoning"
        for part in block.get("summary", [])
    )


def langchain_text(blocks: Any) -> str:
    if isinstance(blocks, str):
        return blocks
    return "".join(
        block.get("text", "")
        for block in blocks
        if isinstance(block, dict) and block.get("type") == "text"
    )


def test_langchain_chat_completions_gets_the_answer_without_the_steps(demo: ServerThread) -> None:
    llm = chat_openai(demo.url, responses=False)
    message = llm.invoke(QUESTION)
    assert message.content == DEMO_ANSWER
    # ChatOpenAI drops chat completions' reasoning fields (docs/proxy.md: use the Responses
    # API for the steps); this fails when it starts reading them, and the docs must follow.
    assert "reasoning_content" not in message.additional_kwargs
    assert "".join(str(c.content) for c in llm.stream(QUESTION)) == DEMO_ANSWER


def test_langchain_responses_api_gets_the_steps_as_a_reasoning_block(demo: ServerThread) -> None:
    llm = chat_openai(demo.url, responses=True)
    message = llm.invoke(QUESTION)
    assert langchain_reasoning(message.content) == demo_reasoning(demo.url)
    assert langchain_text(message.content) == DEMO_ANSWER
    streamed = [chunk.content for chunk in llm.stream(QUESTION)]
    assert "".join(langchain_reasoning(c) for c in streamed) == demo_reasoning(demo.url)
    assert "".join(langchain_text(c) for c in streamed) == DEMO_ANSWER
