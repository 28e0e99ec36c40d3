"""A run's reasoning as the text people read: a bold heading per step, its content, and the
output of each code run in a fenced ``output`` block right after the code that produced it.

Everything here formats the fold (view.py).  The streamed reasoning is the same document as it
grows: the text of every step attempt in the order it happened, a note in brackets for an
attempt thrown away, so what was sent is never taken back.  A chain streamed without retries
reads exactly like its finished steps (``format_steps``).
"""

from __future__ import annotations

from collections.abc import Sequence

from thinkchain.chain.events import ChainRead, CodeRun, Step
from thinkchain.chain.labels import has_own_title, label, step_heading
from thinkchain.chain.parts import Part, TextPart, step_parts
from thinkchain.chain.run_view import RunView
from thinkchain.chain.text import fenced
from thinkchain.chain.view import ChainView, Notice, StepAttempt


def heading_start(index: int, lang: str) -> str:
    """The heading up to its title: the title streams after it, then ``heading_end``."""
    return "**" + step_heading(index, "", lang)


def heading_end() -> str:
    return "**\n"


def untitled_heading(index: int, lang: str) -> str:
    """The heading of a step without a title of its own: "**Step 3**", never "Step 3: Step 3"."""
    return "**" + label(lang, "untitled_step", index=index) + heading_end()


def heading(index: int, title: str, lang: str) -> str:
    if has_own_title(index, title):
        return heading_start(index, lang) + title + heading_end()
    return untitled_heading(index, lang)


def output_block(run: CodeRun, before: str) -> str:
    """The run's output (or its error) as a fenced block, to be written after ``before``."""
    lines = [run.output.rstrip("\n")] if run.output.strip() else []
    if run.truncated:
        lines.append("… (output cut)")
    if not run.ok:
        lines.append(f"{run.status}: {run.error}" if run.error else run.status)
    block = fenced("\n".join(lines) or "(no output)", "output")
    return block + "\n" if before.endswith("\n") else "\n" + block


def _with_parts(text: str, parts: Sequence[Part]) -> str:
    """``text`` followed by the parts: their text, each run's output after its block; a block
    that has not run yet holds back what follows it."""
    for part in parts:
        if isinstance(part, TextPart):
            text += part.text
        elif part.run is not None:
            text += output_block(part.run, text)
        else:
            break
    return text


def step_text(step: Step, lang: str) -> str:
    return _with_parts(heading(step.index, step.title, lang), step_parts(step))


def format_steps(steps: Sequence[Step], lang: str) -> str:
    """Steps as people read them; a streamed chain without retries reads exactly the same."""
    return "\n\n".join(step_text(step, lang) for step in steps)


def attempt_text(attempt: StepAttempt, lang: str) -> str:
    """What a step attempt reads as so far; once it is done, the finished step's text when
    that goes on from what was shown (text that waited, a title it took for empty content)."""
    live = _live_text(attempt, lang)
    if attempt.step is not None:
        whole = step_text(attempt.step, lang)
        if whole.startswith(live):
            return whole
    return live


def _live_text(attempt: StepAttempt, lang: str) -> str:
    if not attempt.heading_shown():
        return ""
    if attempt.heading_title is None:  # the title is streaming: the heading is not closed yet
        return heading_start(attempt.index, lang) + attempt.title.strip()
    return _with_parts(heading(attempt.index, attempt.heading_title.strip(), lang), attempt.parts())


def note_text(notice: Notice) -> str:
    if notice.kind == "discarded":
        return f"step {notice.index} dropped: {notice.reason}"
    if notice.target == "answer":
        return f"retrying the answer: {notice.reason}"
    return f"retrying step {notice.index}: {notice.reason}"


def reasoning_document(view: ChainView) -> str:
    """The chain's reasoning as it has streamed so far: every step attempt in order, a note in
    brackets for each one thrown away."""
    text = ""
    for entry in view.timeline:
        if isinstance(entry, StepAttempt):
            piece = attempt_text(entry, view.lang)
            if piece:
                text += ("\n\n" if text else "") + piece
        elif isinstance(entry, Notice):
            text += ("\n\n" if text else "") + f"({note_text(entry)})"
    return text


def answer_document(view: ChainView) -> str:
    """The answer as it has streamed so far: each attempt's text, a break after one retried."""
    text = ""
    for entry in view.timeline:
        if not isinstance(entry, StepAttempt) and not isinstance(entry, Notice):
            text += entry.shown
            if entry.retried and entry.shown:
                text += "\n\n"
    return text


# -- a run: one chain, or a strategy's chains and decision ------------------------------------


def read_line(read: ChainRead, size: int) -> str:
    """A finished chain of a strategy's run, in a line: "Sample 2 of 5: answered 3 after 4
    step(s)"."""
    result = read.result
    if read.answer is not None:
        what = f"answered {read.answer}"
    elif result.error is not None:
        what = f"no answer ({result.error.kind})"
    else:
        what = "no readable answer"
    return (
        f"{read.role.capitalize()} {read.chain + 1} of {size}: {what} after "
        f"{len(result.steps)} step(s)"
    )


def run_reasoning(view: RunView) -> str:
    """The run's reasoning as it has streamed: a chain's own steps; for a strategy, a line per
    finished chain, then the decision and the reasoning of the chain it chose."""
    if not view.several:
        return reasoning_document(view.chains[0])
    text = "\n".join(read_line(read, view.size) for read in view.reads)
    result, decision = view.result, view.decision
    if result is None or decision is None or decision.chosen is None or result.answer is None:
        return text
    role = next((r.role for r in view.reads if r.chain == decision.chosen), "chain")
    votes = decision.counts.get(decision.winner or "", 0)
    return text + (
        f"\n\nVote: {decision.winner} ({votes} of {decision.voters} votes); the reasoning of "
        f"{role} {decision.chosen + 1}:\n\n{format_steps(result.steps, result.lang)}"
    )


def run_answer(view: RunView) -> str:
    """The answer as it has streamed: a chain's as it is written; a strategy's once decided."""
    if not view.several:
        return answer_document(view.chains[0])
    result = view.result
    return result.answer.text if result is not None and result.answer is not None else ""
