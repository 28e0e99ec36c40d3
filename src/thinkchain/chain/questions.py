"""What makes a question askable, and the typed reason when it is not.

Each front end (page, terminal, proxy) says the reason in its own words; the English sentence
of :class:`InvalidQuestion` is there for those that have none of their own.
"""

from __future__ import annotations

import re
from typing import Literal

from thinkchain.chain.text import replace_lone_surrogates

QuestionProblem = Literal["empty", "too_long", "not_text"]

# Control characters other than tab, newline and carriage return are dropped from a question.
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class InvalidQuestion(ValueError):
    """The question cannot be asked: empty, too long, or not text.

    ``length`` and ``limit`` (characters, after cleaning) are set for ``too_long`` only.
    """

    def __init__(
        self,
        reason: QuestionProblem,
        message: str,
        *,
        length: int | None = None,
        limit: int | None = None,
    ) -> None:
        super().__init__(message)
        self.reason: QuestionProblem = reason
        self.length = length
        self.limit = limit


def clean_question(question: object, max_chars: int) -> str:
    """The question as it will be sent, or InvalidQuestion with its reason and a sentence."""
    if not isinstance(question, str):
        raise InvalidQuestion(
            "not_text", f"the question must be text, not {type(question).__name__}"
        )
    text = _CONTROL_CHARS.sub("", replace_lone_surrogates(question)).strip()
    if not text:
        raise InvalidQuestion("empty", "the question is empty")
    if len(text) > max_chars:
        raise InvalidQuestion(
            "too_long",
            f"the question is {len(text):,} characters long; the limit is {max_chars:,}",
            length=len(text),
            limit=max_chars,
        )
    return text
