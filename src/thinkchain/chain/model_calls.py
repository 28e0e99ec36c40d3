"""What a chain shape may do with the model: the one interface every shape is written against.

A shape (iterative, single-pass, single call, verification) decides what to ask; this module
does the asking and the bookkeeping that is the same for all of them: transport retries with
backoff, the token budget, the degeneration guard, the final-answer request, retry events,
wasted tokens and cut generations.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
import threading
from collections.abc import Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from time import perf_counter
from typing import Literal

from thinkchain.chain.backend import (
    Backend,
    BackendError,
    Completion,
    ContextOverflow,
    GenerationRequest,
    Message,
    TextChunk,
    TransportError,
)
from thinkchain.chain.background import opening_messages, posed_question
from thinkchain.chain.events import (
    AnswerDelta,
    AnswerDone,
    AnswerStarted,
    ChainError,
    ChainEvent,
    ChainResult,
    ErrorKind,
    FinalAnswer,
    Retry,
    Usage,
)
from thinkchain.chain.guards import (
    COPIED_INSTRUCTIONS,
    TEMPERATURE_BUMP,
    Degenerated,
    DegenerationGuard,
    copies_instructions,
)
from thinkchain.chain.prompts import prompt
from thinkchain.chain.settings import ChainSettings
from thinkchain.chain.steps import StepFormatError, parse_step

# Room kept for the final answer when the context fills up with steps.
ANSWER_RESERVE = 256

RetryTarget = Literal["step", "answer"]
# Builds the request for the next try after a transport failure: (target, index, request).
Restart = Callable[[], tuple[RetryTarget, int, GenerationRequest]]


class ChainStop(Exception):
    """Ends the chain with an error; raised inside a shape, turned into ChainFailed."""

    def __init__(self, kind: ErrorKind, message: str, **details: object) -> None:
        error = ChainError(kind, message, **details)  # type: ignore[arg-type]
        super().__init__(str(error))
        self.error = error


@dataclass(frozen=True, slots=True)
class Generated:
    text: str
    completion: Completion
    ttft: float | None


class ModelCalls:
    """One chain's access to its backend, shared by the shapes that make up the chain."""

    def __init__(
        self,
        backend: Backend,
        settings: ChainSettings,
        result: ChainResult,
        context: Sequence[Message],
        emit: Callable[[ChainEvent], None],
    ) -> None:
        self.backend = backend
        self.settings = settings
        self.result = result
        self.context = list(context)  # earlier turns of the conversation, before the question
        self.emit = emit
        self.generated = 0  # completion tokens of all calls, counted as they stream

    # -- bookkeeping ------------------------------------------------------------------------

    def retry(self, target: RetryTarget, index: int, attempt: int, reason: str) -> None:
        """An attempt was thrown away: counted, and announced to the consumers."""
        self.result.retries += 1
        self.emit(Retry(target, index, attempt, reason))

    def waste(self, usage: Usage) -> None:
        """Tokens spent on something that left nothing behind."""
        self.result.wasted_usage = self.result.wasted_usage + usage

    def waste_tokens(self, completion_tokens: int) -> None:
        """Streamed tokens counted from chunks, spent for nothing."""
        self.waste(Usage(completion_tokens=completion_tokens, estimated=True))

    def cut(self, index: int, reason: str, text: str, *, repeat: bool, usage: Usage) -> None:
        """A generation cut and not kept: recorded with its text, its tokens wasted."""
        self.result.record_cut(index, reason, text, repeat=repeat)
        self.waste(usage)

    def cut_degenerated(self, index: int, bad: Degenerated) -> None:
        """A stream the guard cut: recorded like every other cut, its tokens wasted."""
        self.cut(index, bad.reason, bad.text, repeat=False, usage=bad.usage)

    def degenerated_attempt(
        self, target: RetryTarget, index: int, attempt: int, bad: Degenerated, temperature: float
    ) -> float:
        """An attempt the guard cut: kept with its text, announced when another follows.

        Returns the temperature for the next attempt.  Its tokens stay with the step or answer
        being tried, which counts them as wasted if it never comes.
        """
        self.result.record_cut(index, bad.reason, bad.text, repeat=False)
        if attempt < self.settings.max_attempts:
            self.retry(target, index, attempt, bad.reason)
        return self.hotter(temperature)

    @staticmethod
    def hotter(temperature: float) -> float:
        """The temperature for the try after degenerate output: a little hotter to leave it."""
        return min(1.0, temperature + TEMPERATURE_BUMP)

    # -- context ----------------------------------------------------------------------------

    def opening(self, system: str, question: str, lang: str) -> list[Message]:
        """The messages every shape starts from: its system prompt and the question, after
        the earlier turns of the conversation shown as background (background.py)."""
        return opening_messages(system, self.context, question, lang)

    def posed_question(self, question: str, lang: str) -> str:
        """The question with the earlier turns before it, as the opening asks it."""
        return posed_question(self.context, question, lang)

    def check_fits(self, messages: list[Message]) -> None:
        """Stops the chain before anything is generated if the question cannot fit."""
        window = self.backend.context_window()
        if window is None:
            return
        needed = self.backend.count_tokens(messages)
        if needed is None:
            return
        room = self.settings.max_tokens_per_step
        if needed + room > window:
            raise ChainStop(
                "context_overflow",
                f"the question needs {needed:,} prompt tokens; with {room:,} tokens for a "
                f"step that exceeds the model's context of {window:,} tokens",
            )

    def context_full(self, messages: list[Message]) -> bool:
        """Whether another step would leave no room for the final answer."""
        window = self.backend.context_window()
        if window is None or not self.result.steps:
            return False
        used = self.backend.count_tokens(messages)
        if used is None:
            return False
        return used + self.settings.max_tokens_per_step + ANSWER_RESERVE > window

    # -- generation -------------------------------------------------------------------------

    async def generate(
        self,
        request: GenerationRequest,
        target: RetryTarget,
        index: int,
        on_text: Callable[[str], bool | None],
        restart: Restart | None = None,
    ) -> Generated:
        """One call to the backend, retried on transport failures, guarded while it streams.

        ``on_text`` sees each piece of text; returning True says the reply is complete, and
        the backend is asked to stop there.  ``restart``, when given, builds the request for
        the next try after a failure (and says which step or answer the failure discarded);
        by default the same request is sent again.  Raises Degenerated when the guard cuts
        the stream, ChainStop when the backend fails for good or a budget is spent.
        """
        s = self.settings
        failures = 0
        while True:
            started = perf_counter()
            ttft: float | None = None
            parts: list[str] = []
            guard = DegenerationGuard()
            counted_before = self.generated
            try:
                completion: Completion | None = None
                async with aclosing(self.backend.generate(request)) as stream:  # type: ignore[type-var]
                    async for chunk in stream:
                        if isinstance(chunk, TextChunk):
                            if not chunk.text or request.halt.is_set():
                                continue  # after a halt, the backend's last words are moot
                            if ttft is None:
                                ttft = perf_counter() - started
                            parts.append(chunk.text)
                            self._count_generated(1)
                            if on_text(chunk.text):
                                request.halt.set()  # the reply is complete: stop the backend
                            reason = guard.feed(chunk.text)
                            if reason is not None:
                                raise Degenerated(
                                    reason,
                                    "".join(parts),
                                    Usage(completion_tokens=len(parts), estimated=True),
                                )
                        else:
                            completion = chunk
                if completion is None:
                    raise TransportError("the stream ended before the reply was complete")
                reported = completion.usage.completion_tokens
                if not completion.usage.estimated and reported:
                    self.generated = counted_before + reported
                    self._count_generated(0)
                return Generated("".join(parts), completion, ttft)
            except TransportError as err:
                self.waste_tokens(len(parts))
                failures += 1
                if failures > s.max_retries:
                    raise ChainStop(
                        "backend_error",
                        f"{err.message} (gave up after {failures} tries)",
                        server=err.server,
                        status=err.status,
                        timed_out=err.timed_out,
                    ) from None
                delay = self._backoff(failures, err.retry_after)
                if restart is not None:
                    target, index, request = restart()
                else:
                    request = dataclasses.replace(request, halt=threading.Event())
                where = f"{err.server}: " if err.server else ""
                self.retry(
                    target, index, failures, f"{where}{err.message}; retrying in {delay:.1f} s"
                )
                await asyncio.sleep(delay)
            except ContextOverflow as err:
                raise ChainStop("context_overflow", err.message, server=err.server) from None
            except BackendError as err:
                raise ChainStop(
                    "backend_error", err.message, server=err.server, status=err.status
                ) from None

    async def answer(
        self,
        messages: list[Message],
        lang: str,
        *,
        ask_for_answer: bool = True,
        purpose: str = "answer",
        announce: bool = True,
    ) -> None:
        """Asks for the final answer after the reasoning in ``messages`` and records it."""
        s = self.settings
        if announce:
            self.emit(AnswerStarted())
        started = perf_counter()
        usage = Usage()
        temperature = s.temperature
        request_messages = list(messages)
        if ask_for_answer:
            request_messages.append({"role": "user", "content": prompt(lang, "final_answer")})
        # What thinkchain told the model; an "answer" found in there was copied, not written.
        instructions = [str(m["content"]) for m in request_messages if m["role"] == "system"]
        instructions.append(prompt(lang, "final_answer"))
        max_tokens = s.final_max_tokens
        window = self.backend.context_window()
        if window is not None:
            used = self.backend.count_tokens(request_messages)
            if used is not None:
                max_tokens = max(16, min(max_tokens, window - used))

        def on_text(delta: str) -> None:
            self.emit(AnswerDelta(delta))

        reason = ""
        for attempt in range(1, s.max_attempts + 1):
            request = GenerationRequest(
                messages=request_messages,
                max_tokens=max_tokens,
                temperature=temperature,
                schema=None,
                seed=s.seed,
                purpose=purpose,
            )
            try:
                generated = await self.generate(request, "answer", 0, on_text)
            except Degenerated as bad:
                usage = usage + bad.usage
                reason = bad.reason
                temperature = self.degenerated_attempt("answer", 0, attempt, bad, temperature)
                continue
            usage = usage + generated.completion.usage
            text = unwrap_answer(generated.text)
            if not text or copies_instructions(text, instructions):
                reason = COPIED_INSTRUCTIONS if text else "the final answer was empty"
                if attempt < s.max_attempts:
                    self.retry("answer", 0, attempt, reason)
                continue
            answer = FinalAnswer(
                text=text, seconds=perf_counter() - started, ttft=generated.ttft, usage=usage
            )
            self.result.answer = answer
            self.emit(AnswerDone(answer))
            return
        self.waste(usage)
        raise ChainStop(
            "answer_failed", f"no usable final answer after {s.max_attempts} attempt(s): {reason}"
        )

    def _backoff(self, failures: int, retry_after: float | None) -> float:
        s = self.settings
        if retry_after is not None and retry_after >= 0:
            return min(retry_after, max(s.retry_max_delay, 60.0))
        delay = s.retry_base_delay * (2 ** (failures - 1))
        # Jitter spreads the retries of many concurrent chains hitting one rate-limited server.
        return min(s.retry_max_delay, delay * (0.75 + random.random() / 2))

    def _count_generated(self, tokens: int) -> None:
        self.generated += tokens
        limit = self.settings.max_total_tokens
        if limit is not None and self.generated >= limit:
            raise ChainStop("token_budget", f"the budget of {limit:,} generated tokens is spent")


def unwrap_answer(text: str) -> str:
    """The answer text.  A model that keeps writing JSON steps gets its content unwrapped."""
    stripped = text.strip()
    if stripped.startswith("{") and stripped.endswith("}"):
        try:
            return parse_step(stripped).content
        except StepFormatError:
            pass
        try:
            obj = json.loads(stripped, strict=False)
        except ValueError:
            return stripped
        if isinstance(obj, dict):
            for key in ("final_answer", "answer", "content", "result"):
                value = obj.get(key)
                if isinstance(value, (str, int, float)) and str(value).strip():
                    return str(value).strip()
    return stripped
