"""What both step formats share: the parsed step, the error sent back, the lenient readers."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from thinkchain.chain.events import NextAction

_FENCE = re.compile(r"```[a-zA-Z0-9_-]*\s*\n?")

_FINAL_WORDS = {"final_answer", "final", "answer", "finalanswer", "done", "finish", "finished"}
_CONTINUE_WORDS = {"continue", "next", "next_step", "continue_reasoning", "keep_going"}


class StepFormatError(ValueError):
    """The text is not a valid step.  ``str(err)`` is written for the model to read."""

    def __init__(self, message: str, *, truncated: bool = False) -> None:
        super().__init__(message)
        self.truncated = truncated


@dataclass(frozen=True, slots=True)
class ParsedStep:
    title: str
    content: str
    next_action: NextAction
    # The text of the step as it should appear in the conversation afterwards.
    canonical: str


def strip_fences(text: str) -> str:
    """``text`` without Markdown code fences (small models wrap steps in them)."""
    return _FENCE.sub("", text).replace("```", "")


def read_as_written_first(read: Callable[[str], ParsedStep], text: str) -> ParsedStep:
    """``read(text)``, and ``read`` of the text without fences only if that fails.

    Fences around a step are not part of it, but stripping them first would also strip a
    fenced code block inside the step (code steps run it).
    """
    try:
        return read(text)
    except StepFormatError:
        unfenced = strip_fences(text)
        if unfenced == text:
            raise
        return read(unfenced)


def normalise_next_action(value: Any) -> NextAction:
    if not isinstance(value, str):
        raise StepFormatError(
            f'"next_action" must be the string "continue" or "final_answer", not {value!r}'
        )
    word = re.sub(r"[\s\-.]+", "_", value.strip().lower()).strip("_")
    if word in _FINAL_WORDS:
        return "final_answer"
    if word in _CONTINUE_WORDS:
        return "continue"
    raise StepFormatError(f'"next_action" must be "continue" or "final_answer", not {value!r}')
