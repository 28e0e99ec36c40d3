"""A step's parts: its text cut where each Python block ends, and each run right after its block.

Where a run sits is known from the chain (CodeRun.at, set where the block closed), never found
again by searching the text; only a step recorded before runs knew their place takes the one
legacy rule below.
"""

from __future__ import annotations

from dataclasses import dataclass

from thinkchain.chain.events import CodeRun, Step


@dataclass(frozen=True, slots=True)
class TextPart:
    """Text of a step as the model wrote it (Markdown; a code block's fences included)."""

    text: str


@dataclass(frozen=True, slots=True)
class RunPart:
    """A Python block of the step as it ran: its code, and the run (None until it is done)."""

    code: str
    run: CodeRun | None = None


Part = TextPart | RunPart


def _legacy_place(content: str, run: CodeRun, start: int) -> int:
    """Where a run's block ends in a step recorded before runs knew their place (CodeRun.at
    is None): after its code as written, else at the end.  Only old records and hand-built
    steps take this path; a chain today says where each block closed."""
    found = content.find(run.code, start) if run.code else -1
    if found < 0:
        return len(content)
    close = content.find("`", found + len(run.code))
    if close < 0:
        return len(content)
    while close < len(content) and content[close] == "`":
        close += 1
    return close


def step_parts(step: Step) -> list[Part]:
    """A finished step's content cut at its code runs, each run right after its block."""
    content, pos = step.content, 0
    parts: list[Part] = []
    for run in step.runs:
        at = run.at if run.at is not None else _legacy_place(content, run, pos)
        at = min(max(at, pos), len(content))
        if at > pos:
            parts.append(TextPart(content[pos:at]))
        parts.append(RunPart(run.code, run))
        pos = at
    if pos < len(content) or not parts:
        parts.append(TextPart(content[pos:]))
    return parts
