"""A chat-completion request on a reasoning variant, turned into a chain and back.

``plan`` reads the request (the last user message is the question, the others are context,
the ``thinkchain`` options and OpenAI parameters become ChainSettings) and refuses what cannot
run with a 400.  ``run`` drives the chain (or self-consistency) and turns its events into
three kinds of output only: reasoning text, answer text, and one Finished at the end.  The
HTTP layer (chat.py) only writes those out; it never sees a chain event.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from thinkchain.chain.backend import Backend, Message
from thinkchain.chain.events import (
    ChainError,
    ChainResult,
    Event,
    Retry,
    StepDiscarded,
    Usage,
)
from thinkchain.chain.questions import InvalidQuestion, clean_question
from thinkchain.chain.run_view import Growing, RunView
from thinkchain.chain.settings import ChainSettings, StrategySettings
from thinkchain.chain.strategies import make_run
from thinkchain.chain.text import replace_lone_surrogates
from thinkchain.proxy.errors import bad_request, describe_validation
from thinkchain.proxy.proxy_settings import ProxySettings
from thinkchain.proxy.schemas import ChatCompletionRequest, ChatMessage, ThinkchainOptions
from thinkchain.proxy.step_text import format_steps, run_answer, run_reasoning

log = logging.getLogger("thinkchain.proxy")

# Budgets end a chain without an answer, the way max_completion_tokens ends an OpenAI
# reasoning model's turn: a normal response with finish_reason "length", not an error.
_BUDGET_KINDS = ("token_budget", "time_budget")
_MAX_FINAL_TOKENS = 32768


# -- the plan ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    question: str
    context: list[Message]
    settings: ChainSettings
    strategy: StrategySettings


def _text_of(message: ChatMessage, param: str) -> str:
    content = message.content
    if content is None:
        return ""
    if isinstance(content, str):
        text = content
    else:
        parts = []
        for part in content:
            if part.type != "text":
                raise bad_request(
                    f"reasoning variants read text only; a {part.type!r} part cannot be used",
                    param=param,
                    code="unsupported_content",
                )
            parts.append(part.text or "")
        text = "\n".join(parts)
    # Lone surrogates (from "\ud800" escapes) cannot be encoded for the upstream: U+FFFD.
    return replace_lone_surrogates(text)


def _as_context(message: ChatMessage, index: int) -> Message | None:
    text = _text_of(message, f"messages.{index}.content")
    if not text.strip():
        return None
    role = message.role
    if role in ("system", "developer"):
        return {"role": "system", "content": text}
    if role in ("tool", "function"):
        # The chain speaks plain chat; a tool's output becomes something the user showed it.
        return {"role": "user", "content": f"Tool result:\n{text}"}
    return {"role": role, "content": text}


def split_messages(messages: Sequence[ChatMessage], max_chars: int) -> tuple[str, list[Message]]:
    """The question (the last message, the user's) and the conversation before it."""
    last = len(messages) - 1
    if messages[last].role != "user":
        raise bad_request(
            "the last message must be the user's question (role 'user')",
            param=f"messages.{last}.role",
            code="invalid_question",
        )
    raw = _text_of(messages[last], f"messages.{last}.content")
    try:
        question = clean_question(raw, max_chars)
    except InvalidQuestion as err:
        raise bad_request(
            str(err), param=f"messages.{last}.content", code="invalid_question"
        ) from None
    context = []
    for i, message in enumerate(messages[:last]):
        converted = _as_context(message, i)
        if converted is not None:
            context.append(converted)
    return question, context


def _smallest(*values: int | float | None) -> Any:
    present = [v for v in values if v is not None]
    return min(present) if present else None


def plan(body: ChatCompletionRequest, proxy: ProxySettings) -> Plan:
    """Everything needed to run the request, or a 400 that says what to change."""
    opts = body.thinkchain or ThinkchainOptions()
    base = proxy.chain
    if opts.max_steps is not None and opts.max_steps > proxy.max_steps_cap:
        raise bad_request(
            f"max_steps may be at most {proxy.max_steps_cap} on this server",
            param="thinkchain.max_steps",
        )
    if opts.k is not None and opts.k > proxy.max_k:
        raise bad_request(f"k may be at most {proxy.max_k} on this server", param="thinkchain.k")
    max_steps = opts.max_steps or min(base.max_steps, proxy.max_steps_cap)
    # A request that lowers max_steps alone gets min_steps lowered with it, not an error.
    min_steps = opts.min_steps if opts.min_steps is not None else min(base.min_steps, max_steps)
    if min_steps > max_steps:
        raise bad_request(
            f"min_steps ({min_steps}) cannot be larger than max_steps ({max_steps})",
            param="thinkchain.min_steps",
        )
    update: dict[str, Any] = {"max_steps": max_steps, "min_steps": min_steps}
    if opts.lang is not None:
        update["lang"] = opts.lang
    if opts.mode is not None:
        update["mode"] = opts.mode
    if opts.verify is not None:
        update["verify"] = opts.verify
    if body.temperature is not None:
        update["temperature"] = body.temperature
    if body.seed is not None:
        update["seed"] = body.seed
    if body.max_tokens is not None:
        update["final_max_tokens"] = max(16, min(body.max_tokens, _MAX_FINAL_TOKENS))
    update["max_total_tokens"] = _smallest(
        body.max_completion_tokens, proxy.max_total_tokens, base.max_total_tokens
    )
    update["max_seconds"] = _smallest(proxy.max_seconds, base.max_seconds)
    try:
        settings = base.derive(**update)
    except ValidationError as err:
        message, param = describe_validation(err)
        raise bad_request(message, param=f"thinkchain.{param}" if param else None) from None
    question, context = split_messages(body.messages, settings.max_question_chars)
    return Plan(
        question=question,
        context=context,
        settings=settings,
        strategy=StrategySettings(
            strategy=opts.strategy,
            k=opts.k or min(proxy.default_k, proxy.max_k),
            # A request's temperature is the samples' too; otherwise they sample as usual.
            **({"temperature": body.temperature} if body.temperature is not None else {}),
        ),
    )


# -- what a run produces ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reasoning:
    text: str
    note: bool = False  # a remark about the run (a retry), not reasoning the model wrote


@dataclass(frozen=True, slots=True)
class Content:
    text: str


@dataclass(frozen=True)
class Outcome:
    answer: str | None
    reasoning: str  # the steps as readable text
    usage: Usage
    reasoning_tokens: int
    error: ChainError | None
    trace: dict[str, Any]  # the response's "thinkchain" field

    @property
    def over_budget(self) -> bool:
        return self.error is not None and self.error.kind in _BUDGET_KINDS

    @property
    def failed(self) -> bool:
        return self.error is not None and not self.over_budget

    @property
    def finish_reason(self) -> str:
        return "length" if self.over_budget else "stop"

    def usage_dict(self) -> dict[str, Any]:
        u = self.usage
        return {
            "prompt_tokens": u.prompt_tokens,
            "completion_tokens": u.completion_tokens,
            "total_tokens": u.total_tokens,
            "prompt_tokens_details": {"cached_tokens": u.cached_tokens},
            "completion_tokens_details": {"reasoning_tokens": self.reasoning_tokens},
        }


@dataclass(frozen=True, slots=True)
class Finished:
    outcome: Outcome


Item = Reasoning | Content | Finished


def run_outcome(
    result: ChainResult, error: ChainError | None, reasoning: str, size: int
) -> Outcome:
    """What the response says of a finished run: the answer, the reasoning as written, usage
    (every chain of a strategy), and the trace (the run as ``thinkchain`` JSON)."""
    trace: dict[str, Any]
    if result.decision is None:
        trace = {"strategy": "chain", **result.to_dict()}
        reasoning_tokens = result.reasoning_usage.completion_tokens
    else:
        trace = {"strategy": result.decision.strategy, "k": size, **result.to_dict()}
        trace["steps"] = [s.to_dict() for s in result.steps]
        answer_tokens = result.answer.usage.completion_tokens if result.answer else 0
        reasoning_tokens = result.run_usage.completion_tokens - answer_tokens
    return Outcome(
        answer=result.answer.text if result.answer else None,
        reasoning=reasoning,
        usage=result.run_usage,
        reasoning_tokens=reasoning_tokens,
        error=error,
        trace=trace,
    )


class RunTranslator:
    """A run's events -> reasoning and answer text, as they stream: documents of the run's
    view (step_text.py), each written as it grows, then one Finished."""

    def __init__(self) -> None:
        self.view = RunView()
        self.reasoning = Growing()
        self.content = Growing()

    def feed(self, event: Event) -> list[Item]:
        view = self.view
        view.apply(event)
        items: list[Item] = []
        text = self.reasoning.grow(run_reasoning(view))
        if text:
            items.append(Reasoning(text, note=isinstance(event, (Retry, StepDiscarded))))
        text = self.content.grow(run_answer(view))
        if text:
            items.append(Content(text))
        if view.result is not None:
            reasoning = (
                self.reasoning.sent
                if view.several
                else format_steps(view.result.steps, view.result.lang)
            )
            items.append(Finished(run_outcome(view.result, view.error, reasoning, view.size)))
        return items


async def run(backend: Backend, plan: Plan) -> AsyncGenerator[Item, None]:
    """The run's output.  Closing this generator cancels the chain and its upstream calls."""
    translator = RunTranslator()
    events = make_run(backend, plan.settings, plan.strategy).astream(
        plan.question, context=plan.context
    )
    async with aclosing(events) as stream:
        async for event in stream:
            for item in translator.feed(event):
                yield item
