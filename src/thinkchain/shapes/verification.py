"""Verification, after any shape: solve again by another method; a different result revises.

Shown as one more step.  If the check itself fails (server down, degenerate output), the
answer stands as it was and the check is dropped.
"""

from __future__ import annotations

import re
from time import perf_counter

from ..answers import extract_answer, last_boxed, same_answer
from ..backends.base import GenerationRequest, Message
from ..events import (
    AnswerDelta,
    AnswerDone,
    AnswerStarted,
    FinalAnswer,
    Step,
    StepDelta,
    StepDiscarded,
    StepDone,
    StepStarted,
)
from ..guards import Degenerated
from ..labels import label
from ..model_calls import ChainStop, ModelCalls
from ..prompts import prompt

ANSWER_LINE = re.compile(
    r"^\s*(?:\*\*)?\s*(?:final\s+answer|answer|最终答案|答案)\s*(?:\*\*)?\s*[:：]\s*(.+)$",
    re.I | re.M,
)


def stated_result(text: str) -> str | None:
    """The result a check states explicitly: its last "Answer: ..." line, else its last
    ``\\boxed{...}``, else None.  A result read out of the check's prose is never used."""
    found = ANSWER_LINE.findall(text)
    if found:
        return str(found[-1]).strip().strip("*").strip() or None
    boxed = last_boxed(text)
    return boxed.strip() or None if boxed is not None else None


async def verify(calls: ModelCalls) -> None:
    s, result = calls.settings, calls.result
    lang = result.lang
    original = result.answer
    assert original is not None
    index = len(result.steps) + 1
    title = label(lang, "verification")
    calls.emit(StepStarted(index))
    calls.emit(StepDelta(index, "title", title))
    started = perf_counter()
    messages: list[Message] = [
        {"role": "system", "content": prompt(lang, "verify_system")},
        {
            "role": "user",
            "content": prompt(lang, "verify_user").format(
                question=result.question, answer=original.text
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
        calls.emit(StepDelta(index, "content", delta))

    try:
        generated = await calls.generate(request, "step", index, on_text)
    except ChainStop as failed:
        reason = failed.error.message
        calls.emit(StepDiscarded(index, f"the check failed ({reason}); the answer stands"))
        return
    except Degenerated as bad:
        calls.cut_degenerated(index, bad)
        calls.emit(StepDiscarded(index, f"the check failed ({bad.reason}); the answer stands"))
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
    result.steps.append(step)
    calls.emit(StepDone(step))
    checked_line = stated_result(text)
    checked = extract_answer(checked_line) if checked_line else None
    proposed = extract_answer(original.text)
    if checked is None or proposed is None or same_answer(checked, proposed):
        return
    assert checked_line is not None
    result.answer_before_check = original
    calls.retry("answer", 0, 1, "the verification reached a different result")
    calls.emit(AnswerStarted())
    calls.emit(AnswerDelta(checked_line))
    revised = FinalAnswer(
        text=checked_line, seconds=step.seconds, ttft=step.ttft, usage=original.usage
    )
    result.answer = revised
    calls.emit(AnswerDone(revised))
