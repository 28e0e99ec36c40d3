"""The reasoning loop: one question in, typed events out.

The loop asks the backend for one step at a time (JSON ``title``/``content``/``next_action``),
keeps going until the model says ``final_answer`` (but not before ``min_steps``) or
``max_steps`` is reached, then asks for the final answer as plain text.  Around that core it
handles everything that goes wrong: invalid steps (fed back to the model, at most
``max_attempts`` tries), transport failures (retried with backoff), output that degenerates,
steps that repeat themselves, budgets, cancellation and context limits.  Whatever happens,
the stream ends with exactly one terminal event that carries every finished step.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import random
import re
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from time import perf_counter
from typing import Any

from . import _bridge
from .answers import extract_answer, last_boxed, same_answer
from .backends.base import (
    Backend,
    BackendError,
    Completion,
    ContextOverflow,
    GenerationRequest,
    Message,
    TextChunk,
    TransportError,
)
from .cancel import CancelToken
from .events import (
    AnswerDelta,
    AnswerDone,
    AnswerStarted,
    ChainCompleted,
    ChainError,
    ChainEvent,
    ChainFailed,
    ChainResult,
    ChainStarted,
    ErrorKind,
    FinalAnswer,
    Retry,
    Step,
    StepDelta,
    StepDiscarded,
    StepDone,
    StepStarted,
    Usage,
)
from .guards import TEMPERATURE_BUMP, Degenerated, DegenerationGuard, why_repeated
from .lang import resolve_lang
from .prompts import prompt
from .settings import ChainSettings
from .single_pass import SinglePass
from .steps import (
    JSON_STEPS,
    TEXT_STEPS,
    StepFieldStream,
    StepFormat,
    StepFormatError,
    TextFieldStream,
    parse_step,
)

_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Room kept for the final answer when the context fills up with steps.
_ANSWER_RESERVE = 256
# Text of a rejected reply that is shown back to the model with the error (it is cut beyond).
_ECHO_LIMIT = 1500


class InvalidQuestion(ValueError):
    """The question cannot be asked: empty, too long, or not text."""


def clean_question(question: object, max_chars: int) -> str:
    """The question as it will be sent, or InvalidQuestion with a sentence for the user."""
    if not isinstance(question, str):
        raise InvalidQuestion(f"the question must be text, not {type(question).__name__}")
    # Lone surrogates (undecodable bytes) become U+FFFD; control characters are dropped.
    text = question.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    text = _CONTROL_CHARS.sub("", text).strip()
    if not text:
        raise InvalidQuestion("the question is empty")
    if len(text) > max_chars:
        raise InvalidQuestion(
            f"the question is {len(text):,} characters long; the limit is {max_chars:,}"
        )
    return text


class _Stop(Exception):
    """Ends the chain with an error; raised inside the loop, turned into ChainFailed."""

    def __init__(self, error: ChainError) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass(frozen=True, slots=True)
class _StepOutcome:
    step: Step
    message_text: str  # the step as it stays in the conversation
    kept_going: bool  # the model wanted to answer before min_steps and was asked to go on


@dataclass(frozen=True, slots=True)
class _Generated:
    text: str
    completion: Completion
    ttft: float | None


def _echo(text: str) -> str:
    """A rejected reply as shown back to the model: whitespace runs squeezed, length capped."""
    squeezed = re.sub(r"\s{3,}", "  ", text).strip()
    if len(squeezed) > _ECHO_LIMIT:
        squeezed = squeezed[:_ECHO_LIMIT] + " …"
    return squeezed or "(empty)"


class _Run:
    """State of one chain while it runs.  Lives in its own asyncio task (the producer)."""

    def __init__(
        self,
        backend: Backend,
        settings: ChainSettings,
        question: str,
        context: Sequence[Message],
        cancel: CancelToken | None,
        queue: asyncio.Queue[ChainEvent],
    ) -> None:
        self.backend = backend
        self.settings = settings
        self.raw_question = question
        self.context = list(context)
        self.cancel_token = cancel
        self.queue = queue
        self.interrupt: ErrorKind | None = None
        self.task: asyncio.Task[None] | None = None
        self.generated = 0  # completion tokens of all calls, counted as they stream
        self.step_format = TEXT_STEPS if settings.mode == "iterative-text" else JSON_STEPS
        lang = settings.lang if settings.lang != "auto" else "en"
        self.result = ChainResult(
            question=question, lang=lang, model=backend.model, mode=settings.mode
        )

    # -- plumbing ---------------------------------------------------------------------------

    def emit(self, event: ChainEvent) -> None:
        self.queue.put_nowait(event)

    def stop_now(self, kind: ErrorKind) -> None:
        """Interrupt the run from outside the loop (cancel token, deadline, abandoned stream)."""
        if self.interrupt is None:
            self.interrupt = kind
            if self.task is not None and not self.task.done():
                self.task.cancel()

    def _on_cancel(self) -> None:
        self.stop_now("cancelled")

    async def main(self) -> None:
        self.task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        started = perf_counter()
        deadline_handle = None
        if self.settings.max_seconds is not None:
            deadline_handle = loop.call_later(
                self.settings.max_seconds, self.stop_now, "time_budget"
            )
        if self.cancel_token is not None:
            self.cancel_token.register(loop, self._on_cancel)
        error: ChainError | None = None
        try:
            await self._run()
        except _Stop as stop:
            error = stop.error
        except asyncio.CancelledError:
            error = self._interrupt_error()
        except Exception as err:  # a bug or a backend that broke its contract: report, never raise
            error = ChainError("backend_error", f"unexpected {type(err).__name__}: {err}")
        finally:
            if deadline_handle is not None:
                deadline_handle.cancel()
            if self.cancel_token is not None:
                self.cancel_token.unregister(self._on_cancel)
            self.result.seconds = perf_counter() - started
            if error is None and self.result.answer is None:
                error = self._interrupt_error()
            self.result.error = error
            if error is None:
                self.emit(ChainCompleted(self.result))
            else:
                self.emit(ChainFailed(error, self.result))

    def _interrupt_error(self) -> ChainError:
        kind = self.interrupt or "cancelled"
        if kind == "time_budget":
            return ChainError(
                kind, f"the time budget of {self.settings.max_seconds:g} seconds is spent"
            )
        return ChainError(kind, "the chain was cancelled")

    # -- the chain --------------------------------------------------------------------------

    async def _run(self) -> None:
        await self._reason()
        if self.settings.verify and self.result.answer is not None:
            await self._verify()

    async def _reason(self) -> None:
        s = self.settings
        try:
            question = clean_question(self.raw_question, s.max_question_chars)
            lang = resolve_lang(s.lang, question)
        except (InvalidQuestion, ValueError) as err:
            raise _Stop(ChainError("invalid_input", str(err))) from None
        self.result.question = question
        self.result.lang = lang
        if s.mode in ("direct", "cot"):
            await self._single_call(question, lang)
            return
        if s.mode == "single-pass":
            shape = SinglePass(self, question, lang)
            self._check_fits(shape.base)
            self.emit(ChainStarted(question, lang, self.backend.model, self.result.mode))
            await shape.run_chain()
            return
        messages: list[Message] = [
            {"role": "system", "content": prompt(lang, self.step_format.system_prompt)},
            *self.context,
            {"role": "user", "content": question},
        ]
        self._check_fits(messages)
        self.emit(ChainStarted(question, lang, self.backend.model, self.result.mode))

        index = 0
        while index < s.max_steps:
            if self._context_full(messages):
                break
            index += 1
            outcome = await self._step(index, messages, lang)
            if outcome is None:
                break  # cut as a repetition: reasoning stops, the answer is still requested
            step = outcome.step
            self.result.steps.append(step)
            messages.append({"role": "assistant", "content": outcome.message_text})
            self.emit(StepDone(step))
            if step.next_action == "final_answer":
                break
            if outcome.kept_going:
                remaining = s.min_steps - index
                messages.append(
                    {
                        "role": "user",
                        "content": prompt(lang, "keep_going").format(remaining=remaining),
                    }
                )
        else:
            self.result.hit_step_limit = True
        await self._answer(messages, lang)

    async def _verify(self) -> None:
        """Solve again by another method and compare; a different result revises the answer.

        Shown as one more step.  If the check itself fails (server down, degenerate output),
        the answer stands as it was and the check is dropped.
        """
        s = self.settings
        lang = self.result.lang
        original = self.result.answer
        assert original is not None
        index = len(self.result.steps) + 1
        title = "Verification" if lang == "en" else "验证"
        self.emit(StepStarted(index))
        self.emit(StepDelta(index, "title", title))
        started = perf_counter()
        messages: list[Message] = [
            {"role": "system", "content": prompt(lang, "verify_system")},
            {
                "role": "user",
                "content": prompt(lang, "verify_user").format(
                    question=self.result.question, answer=original.text
                ),
            },
        ]
        request = GenerationRequest(
            messages=messages,
            max_tokens=s.max_tokens_per_step,
            temperature=s.temperature,
            seed=s.seed,
            purpose="verify",
        )

        def on_text(delta: str) -> None:
            self.emit(StepDelta(index, "content", delta))

        try:
            generated = await self._generate(request, "step", index, on_text)
        except _Stop as failed:
            reason = failed.error.message
            self.emit(StepDiscarded(index, f"the check failed ({reason}); the answer stands"))
            return
        except Degenerated as bad:
            # Counted like every other cut, and its tokens were spent all the same.
            self.result.record_cut(index, bad.reason, bad.text, repeat=False)
            self.result.wasted_usage = self.result.wasted_usage + bad.usage
            self.emit(StepDiscarded(index, f"the check failed ({bad.reason}); the answer stands"))
            return
        text = generated.text.strip()
        step = Step(
            index=index,
            title=title,
            content=text or "-",
            next_action="final_answer",
            seconds=perf_counter() - started,
            ttft=generated.ttft,
            usage=generated.completion.usage,
            notes=("verification",),
        )
        self.result.steps.append(step)
        self.emit(StepDone(step))
        checked_line = _answer_line(text)
        checked = extract_answer(checked_line) if checked_line else None
        proposed = extract_answer(original.text)
        if checked is None or proposed is None or same_answer(checked, proposed):
            return
        self.result.answer_before_check = original
        self._retry("answer", 0, 1, "the verification reached a different result")
        self.emit(AnswerStarted())
        assert checked_line is not None
        self.emit(AnswerDelta(checked_line))
        revised = FinalAnswer(
            text=checked_line, seconds=step.seconds, ttft=step.ttft, usage=original.usage
        )
        self.result.answer = revised
        self.emit(AnswerDone(revised))

    def _check_fits(self, messages: list[Message]) -> None:
        window = self.backend.context_window()
        if window is None:
            return
        needed = self.backend.count_tokens(messages)
        if needed is None:
            return
        room = self.settings.max_tokens_per_step
        if needed + room > window:
            raise _Stop(
                ChainError(
                    "context_overflow",
                    f"the question needs {needed:,} prompt tokens; with {room:,} tokens for a "
                    f"step that exceeds the model's context of {window:,} tokens",
                )
            )

    def _context_full(self, messages: list[Message]) -> bool:
        window = self.backend.context_window()
        if window is None or not self.result.steps:
            return False
        used = self.backend.count_tokens(messages)
        if used is None:
            return False
        return used + self.settings.max_tokens_per_step + _ANSWER_RESERVE > window

    async def _step(self, index: int, messages: list[Message], lang: str) -> _StepOutcome | None:
        s = self.settings
        fmt = self.step_format
        self.emit(StepStarted(index))
        started = perf_counter()
        usage = Usage()
        temperature = s.temperature
        follow_up: list[Message] = []
        last_error = ""
        notes: list[str] = []
        for attempt in range(1, s.max_attempts + 1):
            fields = fmt.fields()

            def on_text(delta: str, fields: StepFieldStream | TextFieldStream = fields) -> bool:
                for name, text in fields.feed(delta):
                    self.emit(StepDelta(index, name, text))  # type: ignore[arg-type]
                return fields.complete

            request = GenerationRequest(
                messages=[*messages, *follow_up],
                max_tokens=s.max_tokens_per_step,
                temperature=temperature,
                schema=fmt.schema,
                seed=s.seed,
                purpose="step",
                extra=fmt.extra,
            )
            try:
                generated = await self._generate(request, "step", index, on_text)
            except Degenerated as bad:
                usage = usage + bad.usage
                self.result.record_cut(index, bad.reason, bad.text, repeat=False)
                last_error = bad.reason
                temperature = min(1.0, temperature + TEMPERATURE_BUMP)
                follow_up = self._feedback(lang, bad.text, bad.reason, fmt)
                if attempt < s.max_attempts:
                    self._retry("step", index, attempt, bad.reason)
                continue
            usage = usage + generated.completion.usage
            try:
                parsed = fmt.parse(generated.text)
            except StepFormatError as err:
                repaired = fmt.repair(generated.text) if err.truncated else None
                if attempt == s.max_attempts and repaired is not None:
                    parsed = repaired
                    notes.append("repaired: the step was cut off at the token limit")
                else:
                    last_error = str(err)
                    follow_up = self._feedback(lang, generated.text, last_error, fmt)
                    if attempt < s.max_attempts:
                        self._retry("step", index, attempt, last_error)
                    continue
            repeated = why_repeated(parsed.content, [step.content for step in self.result.steps])
            if repeated:
                self.result.record_cut(index, repeated, parsed.content, repeat=True)
                self.result.wasted_usage = self.result.wasted_usage + usage
                self.emit(StepDiscarded(index, f"{repeated}; reasoning stops here"))
                return None
            action = parsed.next_action
            kept_going = action == "final_answer" and index < s.min_steps
            if kept_going:
                action = "continue"
                notes.append(f"kept going: at least {s.min_steps} steps are required")
            step = Step(
                index=index,
                title=parsed.title,
                content=parsed.content,
                next_action=action,
                seconds=perf_counter() - started,
                ttft=generated.ttft,
                usage=usage,
                attempts=attempt,
                notes=tuple(notes),
            )
            kept_text = generated.text.strip() if fmt.keep_raw(generated.text, parsed) else None
            return _StepOutcome(step, kept_text or parsed.canonical, kept_going)
        self.result.wasted_usage = self.result.wasted_usage + usage
        raise _Stop(
            ChainError(
                "step_failed",
                f"step {index} was still not a valid step after {s.max_attempts} "
                f"attempt(s): {last_error}",
            )
        )

    def _feedback(self, lang: str, bad_text: str, error: str, fmt: StepFormat) -> list[Message]:
        return [
            {"role": "assistant", "content": _echo(bad_text)},
            {"role": "user", "content": prompt(lang, fmt.invalid_prompt).format(error=error)},
        ]

    def _retry(self, target: str, index: int, attempt: int, reason: str) -> None:
        self.result.retries += 1
        self.emit(Retry(target, index, attempt, reason))  # type: ignore[arg-type]

    async def _single_call(self, question: str, lang: str) -> None:
        """The baselines: one call, no steps (``direct``: answer only; ``cot``: think, answer)."""
        system = "direct_system" if self.settings.mode == "direct" else "cot_system"
        messages: list[Message] = [
            {"role": "system", "content": prompt(lang, system)},
            *self.context,
            {"role": "user", "content": question},
        ]
        self._check_fits(messages)
        self.emit(ChainStarted(question, lang, self.backend.model, self.result.mode))
        await self._answer(messages, lang, ask_for_answer=False, purpose=self.settings.mode)

    async def _answer(
        self,
        messages: list[Message],
        lang: str,
        *,
        ask_for_answer: bool = True,
        purpose: str = "answer",
        announce: bool = True,
    ) -> None:
        s = self.settings
        if announce:
            self.emit(AnswerStarted())
        started = perf_counter()
        usage = Usage()
        temperature = s.temperature
        request_messages = list(messages)
        if ask_for_answer:
            request_messages.append({"role": "user", "content": prompt(lang, "final_answer")})
        max_tokens = s.final_max_tokens
        window = self.backend.context_window()
        if window is not None:
            used = self.backend.count_tokens(request_messages)
            if used is not None:
                max_tokens = max(16, min(max_tokens, window - used))
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

            def on_text(delta: str) -> None:
                self.emit(AnswerDelta(delta))

            try:
                generated = await self._generate(request, "answer", 0, on_text)
            except Degenerated as bad:
                usage = usage + bad.usage
                self.result.record_cut(0, bad.reason, bad.text, repeat=False)
                reason = bad.reason
                temperature = min(1.0, temperature + TEMPERATURE_BUMP)
                if attempt < s.max_attempts:
                    self._retry("answer", 0, attempt, reason)
                continue
            usage = usage + generated.completion.usage
            text = _unwrap_answer(generated.text)
            if not text:
                reason = "the final answer was empty"
                if attempt < s.max_attempts:
                    self._retry("answer", 0, attempt, reason)
                continue
            answer = FinalAnswer(
                text=text, seconds=perf_counter() - started, ttft=generated.ttft, usage=usage
            )
            self.result.answer = answer
            self.emit(AnswerDone(answer))
            return
        self.result.wasted_usage = self.result.wasted_usage + usage
        raise _Stop(
            ChainError(
                "answer_failed",
                f"no usable final answer after {s.max_attempts} attempt(s): {reason}",
            )
        )

    async def _generate(
        self,
        request: GenerationRequest,
        target: str,
        index: int,
        on_text: Callable[[str], bool | None],
        restart: Callable[[], tuple[str, int, GenerationRequest]] | None = None,
    ) -> _Generated:
        """One call to the backend, retried on transport failures, guarded while it streams.

        ``on_text`` sees each piece of text; returning True says the reply is complete, and
        the backend is asked to stop there.  ``restart``, when given, builds the request for
        the next try after a failure (and says which step or answer the failure discarded);
        by default the same request is sent again.
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
                return _Generated("".join(parts), completion, ttft)
            except TransportError as err:
                self.result.wasted_usage = self.result.wasted_usage + Usage(
                    completion_tokens=len(parts), estimated=True
                )
                failures += 1
                if failures > s.max_retries:
                    raise _Stop(
                        ChainError(
                            "backend_error",
                            f"{err.message} (gave up after {failures} tries)",
                            server=err.server,
                            status=err.status,
                            timed_out=err.timed_out,
                        )
                    ) from None
                delay = self._backoff(failures, err.retry_after)
                if restart is not None:
                    target, index, request = restart()
                else:
                    request = dataclasses.replace(request, halt=threading.Event())
                where = f"{err.server}: " if err.server else ""
                self._retry(
                    target,
                    index,
                    failures,
                    f"{where}{err.message}; retrying in {delay:.1f} s",
                )
                await asyncio.sleep(delay)
            except ContextOverflow as err:
                raise _Stop(
                    ChainError("context_overflow", err.message, server=err.server)
                ) from None
            except BackendError as err:
                raise _Stop(
                    ChainError("backend_error", err.message, server=err.server, status=err.status)
                ) from None

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
            raise _Stop(
                ChainError("token_budget", f"the budget of {limit:,} generated tokens is spent")
            )


_ANSWER_LINE = re.compile(
    r"^\s*(?:\*\*)?\s*(?:final\s+answer|answer|最终答案|答案)\s*(?:\*\*)?\s*[:：]\s*(.+)$",
    re.I | re.M,
)


def _answer_line(text: str) -> str | None:
    """The result a verification states explicitly: its last "Answer: ..." line, else its last
    ``\boxed{...}`` (the small Qwen models box results out of habit), else None.

    Only such statements count.  Reading a result out of the check's prose picked the wrong
    number far too often: "The proposed answer is incorrect because Leo gave away 6 ... the
    correct total is 53" read as 6, and "the proposed answer is 80" names the answer being
    checked.  On 64 GSM8K items, 23 of the 27 revisions were read from prose and 14 of those
    ended wrong.  A check that states no result changes nothing.
    """
    found = _ANSWER_LINE.findall(text)
    if found:
        return str(found[-1]).strip().strip("*").strip() or None
    boxed = last_boxed(text)
    return boxed.strip() or None if boxed is not None else None


def _unwrap_answer(text: str) -> str:
    """The answer text.  A model that keeps writing JSON steps gets its content unwrapped."""
    stripped = text.strip()
    if stripped.startswith("{") and stripped.endswith("}"):
        try:
            data = parse_step(stripped)
            return data.content
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


class Chain(_bridge.EventRunner[ChainEvent, ChainResult]):
    """A reasoning chain over one backend.

    >>> chain = Chain(backend, ChainSettings(max_steps=10))
    >>> for event in chain.stream("How many r are in strawberry?"):
    ...     print(event)
    >>> result = chain.run("How many r are in strawberry?")

    ``astream``/``arun`` are the async forms; many chains may run at once against an HTTP
    backend.  Every stream ends with exactly one ChainCompleted or ChainFailed.
    """

    def __init__(
        self, backend: Backend, settings: ChainSettings | None = None, **overrides: Any
    ) -> None:
        if settings is None:
            settings = ChainSettings(**overrides)
        elif overrides:
            settings = settings.model_copy(update=overrides)
            settings = ChainSettings.model_validate(settings.model_dump())
        self.backend = backend
        self.settings = settings

    async def astream(
        self,
        question: str,
        *,
        context: Sequence[Message] = (),
        cancel: CancelToken | None = None,
    ) -> AsyncIterator[ChainEvent]:
        queue: asyncio.Queue[ChainEvent] = asyncio.Queue()
        run = _Run(self.backend, self.settings, question, context, cancel, queue)
        task = asyncio.create_task(run.main(), name="thinkchain-chain")
        finished = False
        try:
            while True:
                event = await queue.get()
                yield event
                if isinstance(event, (ChainCompleted, ChainFailed)):
                    finished = True
                    break
        finally:
            if not finished:
                # The consumer stopped listening (closed the stream, disconnected, was
                # cancelled): stop generating at once rather than finishing unseen work.
                run.stop_now("cancelled")
            if not task.done():
                # Wait for the backend stream to close; our own cancellation still propagates.
                with contextlib.suppress(Exception):
                    await asyncio.shield(task)

    def _result(self, event: ChainEvent) -> ChainResult | None:
        return event.result if isinstance(event, (ChainCompleted, ChainFailed)) else None
