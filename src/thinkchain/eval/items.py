"""One question of an evaluation, with its reference answer."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Item:
    id: str  # stable: results are matched to items by id when a run resumes
    question: str
    answer: str  # the reference answer as the dataset gives it
    level: str | None = None  # a difficulty level, when the dataset has them
    # Questions asked first, in the same conversation: the item is a follow-up to them, and
    # the model's own answers to them are the turns before it.
    before: tuple[str, ...] = ()
