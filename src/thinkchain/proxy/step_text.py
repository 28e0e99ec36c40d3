"""Finished steps as the reasoning text people read: a bold heading, the content, and the
output of each code run in a fenced ``output`` block right after the code that produced it.

The stream writes the same pieces as they happen (step_stream.StepStream), so a chain
streamed without retries reads exactly like its finished steps.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ..events import CodeRun, Step
from ..labels import has_own_title, label, step_heading
from ..text import fenced

_BACKTICKS = re.compile(r"`+")


def heading_start(index: int, lang: str) -> str:
    """The heading up to its title: the title streams after it, then ``heading_end``."""
    return "**" + step_heading(index, "", lang)


def heading_end() -> str:
    return "**\n"


def untitled_heading(index: int, lang: str) -> str:
    """The heading of a step without a title of its own: "**Step 3**", never "Step 3: Step 3"."""
    return "**" + label(lang, "untitled_step", index=index) + heading_end()


def output_block(run: CodeRun, before: str) -> str:
    """The run's output (or its error) as a fenced block, to be written after ``before``."""
    lines = [run.output.rstrip("\n")] if run.output.strip() else []
    if run.truncated:
        lines.append("… (output cut)")
    if not run.ok:
        lines.append(f"{run.status}: {run.error}" if run.error else run.status)
    block = fenced("\n".join(lines) or "(no output)", "output")
    return block + "\n" if before.endswith("\n") else "\n" + block


def _code_end(content: str, run: CodeRun, start: int) -> int | None:
    """Where the fence holding the run's code closes in ``content``, or None when not found."""
    at = content.find(run.code, start) if run.code else -1
    if at < 0:
        return None
    close = _BACKTICKS.search(content, at + len(run.code))
    return close.end() if close else None


def step_text(step: Step, lang: str) -> str:
    if has_own_title(step.index, step.title):
        text = heading_start(step.index, lang) + step.title + heading_end()
    else:
        text = untitled_heading(step.index, lang)
    content, start = step.content, 0
    for run in step.runs:
        end = _code_end(content, run, start)
        if end is None:
            end = len(content)  # code not found as written: its output goes at the end
        text += content[start:end]
        text += output_block(run, text)
        start = end
    return text + content[start:]


def format_steps(steps: Sequence[Step], lang: str) -> str:
    """Steps as people read them; a streamed chain without retries reads exactly the same."""
    return "\n\n".join(step_text(step, lang) for step in steps)
