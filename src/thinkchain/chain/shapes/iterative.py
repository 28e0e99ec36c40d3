"""The ``iterative`` and ``iterative-text`` chain shapes: one call per step, then the answer.

Each call asks for one step (a JSON object, or free text inside a ``Title:``/``Next:``
envelope); the loop keeps going until the model says ``final_answer`` (but not before
``min_steps``) or ``max_steps`` is reached, then asks for the final answer as plain text.
An invalid step is shown back to the model with the error, at most ``max_attempts`` tries.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from time import perf_counter

from thinkchain.chain.backend import GenerationRequest, Message
from thinkchain.chain.events import (
    ChainStarted,
    CodeWritten,
    Step,
    StepDelta,
    StepDiscarded,
    StepDone,
    StepStarted,
    Usage,
)
from thinkchain.chain.guards import Degenerated, why_repeated
from thinkchain.chain.model_calls import ChainStop, ModelCalls
from thinkchain.chain.prompts import prompt
from thinkchain.chain.shapes.code import BlockWatch, CodeSteps
from thinkchain.chain.steps import (
    JSON_STEPS,
    TEXT_STEPS,
    StepFieldStream,
    StepFormat,
    StepFormatError,
    TextFieldStream,
)

# Text of a rejected reply that is shown back to the model with the error (it is cut beyond).
ECHO_LIMIT = 1500


@dataclass(frozen=True, slots=True)
class StepOutcome:
    step: Step
    message_text: str  # the step as it stays in the conversation
    kept_going: bool  # the model wanted to answer before min_steps and was asked to go on


def echo(text: str) -> str:
    """A rejected reply as shown back to the model: whitespace runs squeezed, length capped."""
    squeezed = re.sub(r"\s{3,}", "  ", text).strip()
    if len(squeezed) > ECHO_LIMIT:
        squeezed = squeezed[:ECHO_LIMIT] + " …"
    return squeezed or "(empty)"


class Iterative:
    """One chain in the one-step-per-call shape."""

    def __init__(self, calls: ModelCalls, question: str, lang: str) -> None:
        self.calls = calls
        self.settings = calls.settings
        self.lang = lang
        self.format: StepFormat = (
            TEXT_STEPS if self.settings.mode == "iterative-text" else JSON_STEPS
        )
        self.code = CodeSteps.for_chain(calls, lang)
        system = prompt(lang, self.format.system_prompt)
        if self.code is not None:
            system += "\n\n" + self.code.instructions
        self.messages: list[Message] = calls.opening(system, question, lang)

    async def run(self) -> None:
        calls, s, result = self.calls, self.settings, self.calls.result
        calls.check_fits(self.messages)
        calls.emit(ChainStarted(result.question, self.lang, calls.backend.model, result.mode))
        messages = self.messages
        index = 0
        while index < s.max_steps:
            if calls.context_full(messages):
                break
            index += 1
            outcome = await self._step(index, messages)
            if outcome is None:
                break  # cut as a repetition: reasoning stops, the answer is still requested
            step = outcome.step
            follow_up: str | None = None
            if self.code is not None:
                step, follow_up = await self.code.run_step(step)
            result.steps.append(step)
            messages.append({"role": "assistant", "content": outcome.message_text})
            calls.emit(StepDone(step))
            if follow_up is not None:
                # The code's output is what the model reasons on next, whatever it had planned.
                messages.append({"role": "user", "content": follow_up})
                continue
            if step.next_action == "final_answer":
                break
            if outcome.kept_going:
                remaining = s.min_steps - index
                messages.append(
                    {
                        "role": "user",
                        "content": prompt(self.lang, "keep_going").format(remaining=remaining),
                    }
                )
        else:
            result.hit_step_limit = True
        await calls.answer(messages, self.lang)

    async def _step(self, index: int, messages: list[Message]) -> StepOutcome | None:
        calls, s, fmt = self.calls, self.settings, self.format
        calls.emit(StepStarted(index))
        started = perf_counter()
        usage = Usage()
        temperature = s.temperature
        follow_up: list[Message] = []
        last_error = ""
        notes: list[str] = []
        for attempt in range(1, s.max_attempts + 1):
            fields = fmt.fields()
            # With code steps on, where the content's block closes is announced as it streams
            # (it runs once the step is finished).
            watch = BlockWatch() if self.code is not None else None

            def on_text(
                delta: str,
                fields: StepFieldStream | TextFieldStream = fields,
                watch: BlockWatch | None = watch,
            ) -> bool:
                for name, text in fields.feed(delta):
                    before = len(watch.text) if watch is not None else 0
                    block = watch.feed(text) if watch is not None and name == "content" else None
                    if block is None:
                        calls.emit(StepDelta(index, name, text))  # type: ignore[arg-type]
                        continue
                    # The text up to the block's end, the block, then what follows it.
                    cut = max(0, block[1] - before)
                    if text[:cut]:
                        calls.emit(StepDelta(index, "content", text[:cut]))
                    calls.emit(CodeWritten(index, *block))
                    if text[cut:]:
                        calls.emit(StepDelta(index, "content", text[cut:]))
                return fields.complete

            request = GenerationRequest(
                messages=[*messages, *follow_up],
                max_tokens=s.max_tokens_per_step,
                temperature=temperature,
                schema=fmt.schema,
                seed=s.seed,
                purpose="step",
                regex=fmt.regex,
            )
            try:
                generated = await calls.generate(request, "step", index, on_text)
            except Degenerated as bad:
                usage = usage + bad.usage
                last_error = bad.reason
                follow_up = self._feedback(bad.text, bad.reason)
                temperature = calls.degenerated_attempt("step", index, attempt, bad, temperature)
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
                    follow_up = self._feedback(generated.text, last_error)
                    if attempt < s.max_attempts:
                        calls.retry("step", index, attempt, last_error)
                    continue
            repeated = why_repeated(parsed.content, [step.content for step in calls.result.steps])
            if repeated:
                calls.cut(index, repeated, parsed.content, repeat=True, usage=usage)
                calls.emit(StepDiscarded(index, f"{repeated}; reasoning stops here"))
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
            return StepOutcome(step, kept_text or parsed.canonical, kept_going)
        calls.waste(usage)
        raise ChainStop(
            "step_failed",
            f"step {index} was still not a valid step after {s.max_attempts} "
            f"attempt(s): {last_error}",
        )

    def _feedback(self, bad_text: str, error: str) -> list[Message]:
        return [
            {"role": "assistant", "content": echo(bad_text)},
            {
                "role": "user",
                "content": prompt(self.lang, self.format.invalid_prompt).format(error=error),
            },
        ]


async def run_iterative(calls: ModelCalls, question: str, lang: str) -> None:
    await Iterative(calls, question, lang).run()
