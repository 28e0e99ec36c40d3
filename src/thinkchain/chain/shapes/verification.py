"""Verification, after any shape: solve again by another method; a different result revises.

Shown as one more step.  If the check itself fails (server down, degenerate output), the
answer stands as it was and the check is dropped.
"""

from __future__ import annotations

import re
import threading
from dataclasses import replace
from time import perf_counter

from thinkchain.chain.answers import extract_answer, last_boxed, same_answer
from thinkchain.chain.backend import GenerationRequest, Message
from thinkchain.chain.events import (
    AnswerDelta,
    AnswerDone,
    AnswerStarted,
    CodeWritten,
    FinalAnswer,
    Step,
    StepDelta,
    StepDiscarded,
    StepDone,
    StepStarted,
    Usage,
)
from thinkchain.chain.guards import Degenerated
from thinkchain.chain.labels import label
from thinkchain.chain.model_calls import ChainStop, ModelCalls, RetryTarget
from thinkchain.chain.prompts import prompt
from thinkchain.chain.shapes.code import CodeSteps, find_block

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
    # With code steps on, the check may compute with a program too: a check that had to count
    # or add in its head would overturn the answers the chain's programs got right.
    code = CodeSteps.for_chain(calls, lang)
    system = prompt(lang, "verify_system")
    if code is not None:
        system += "\n\n" + code.instructions
    messages: list[Message] = [
        {"role": "system", "content": system},
        {
            "role": "user",
            "content": prompt(lang, "verify_user").format(
                question=calls.posed_question(result.question, lang), answer=original.text
            ),
        },
    ]
    step = Step(
        index=index,
        title=title,
        content="",
        next_action="final_answer",
        seconds=0.0,
        ttft=None,
        usage=Usage(),
        notes=("verification",),
    )
    # One reply; with code, one per program run (at most max_code_runs), one told that the
    # runs are spent, and a last one.
    for _ in range(s.max_code_runs + 2 if code is not None else 1):
        try:
            part, step = await _check_part(calls, messages, step, code is not None)
        except ChainStop as failed:
            reason = failed.error.message
            calls.emit(StepDiscarded(index, f"the check failed ({reason}); the answer stands"))
            return
        except Degenerated as bad:
            calls.cut_degenerated(index, bad)
            calls.emit(StepDiscarded(index, f"the check failed ({bad.reason}); the answer stands"))
            return
        block = find_block(part) if code is not None else None
        end = block[1] if block is not None else None
        if end is None:
            step = replace(step, content=step.content + part)
            break
        assert code is not None
        step, told = await code.run_step(replace(step, content=step.content + part[:end]))
        if told is None:
            break
        messages += [
            {"role": "assistant", "content": part[:end]},
            {"role": "user", "content": f"{told}\n\n{prompt(lang, 'verify_continue')}"},
        ]
        # The reply after the output goes on in the same step, below the output.
        step = replace(step, content=step.content + "\n\n")
        calls.emit(StepDelta(index, "content", "\n\n"))
    step = step.stripped()
    text = step.content
    step = replace(step, content=text or "-", seconds=perf_counter() - started)
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


async def _check_part(
    calls: ModelCalls, messages: list[Message], step: Step, stop_at_code: bool
) -> tuple[str, Step]:
    """One reply of the check, streamed as ``step``'s content; returns the reply and the step
    with its usage (the caller adds the text).  With ``stop_at_code`` the reply ends once a
    Python block is closed, so the model goes on from the real output, not one it imagines."""
    s = calls.settings
    request = GenerationRequest(
        messages=list(messages),
        max_tokens=s.max_tokens_per_step,
        temperature=s.temperature,
        seed=s.seed,
        purpose="verify",
    )
    parts: list[str] = []

    def on_text(delta: str) -> bool:
        before = sum(map(len, parts))
        parts.append(delta)
        block = find_block("".join(parts)) if stop_at_code and "`" in delta else None
        if block is not None:
            delta = delta[: max(0, block[1] - before)]  # what follows the block is never shown
        if delta:
            calls.emit(StepDelta(step.index, "content", delta))
        if block is not None:
            code, end = block
            calls.emit(CodeWritten(step.index, code, len(step.content) + end))
        return block is not None

    def restart() -> tuple[RetryTarget, int, GenerationRequest]:
        parts.clear()  # a failed try's text is withdrawn; the block is looked for anew
        return "step", step.index, replace(request, halt=threading.Event())

    generated = await calls.generate(request, "step", step.index, on_text, restart=restart)
    return generated.text, replace(
        step,
        ttft=step.ttft if step.ttft is not None else generated.ttft,
        usage=step.usage + generated.completion.usage,
    )
