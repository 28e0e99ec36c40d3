"""Detect output that has stopped saying anything: endless whitespace, loops, repeated steps.

Small models and some JSON modes degenerate into whitespace or a phrase repeated until
``max_tokens``.  Waiting that out costs up to a thousand tokens a step; these checks cut the
stream as soon as the pattern is unmistakable.
"""

from __future__ import annotations

import re
from difflib import SequenceMatcher

# Thresholds chosen so that legitimate text (indented code, tables, lists) never trips them.
MAX_WHITESPACE_RUN = 160
MIN_REPEATED_SPAN = 240  # characters covered by the repeating tail before we call it a loop
MIN_REPEATS = 4
MAX_PERIOD = 200
_CHECK_EVERY = 24  # characters between two loop checks

_WS_TAIL = re.compile(r"\s+\Z")
_NORMALISE = re.compile(r"\W+", re.UNICODE)


class DegenerationGuard:
    """Fed the streamed text of one generation; ``check`` returns a reason once it degenerates."""

    __slots__ = ("_since_check", "_text")

    def __init__(self) -> None:
        self._text: list[str] = []
        self._since_check = 0

    def feed(self, delta: str) -> str | None:
        self._text.append(delta)
        self._since_check += len(delta)
        if self._since_check < _CHECK_EVERY:
            return None
        self._since_check = 0
        text = "".join(self._text)
        self._text = [text]
        return find_degeneration(text)


def find_degeneration(text: str) -> str | None:
    tail = _WS_TAIL.search(text)
    if tail and len(tail.group()) >= MAX_WHITESPACE_RUN:
        return f"the output degenerated into {len(tail.group())} characters of whitespace"
    period = _repeating_period(text)
    if period:
        return f"the output degenerated into a loop repeating every {period} characters"
    return None


def _repeating_period(text: str) -> int | None:
    """The period of a block repeated back to back at the end of ``text``, if it covers enough."""
    n = len(text)
    if n < MIN_REPEATED_SPAN:
        return None
    window = text[-(MAX_PERIOD * MIN_REPEATS + MIN_REPEATED_SPAN) :]
    for period in range(1, MAX_PERIOD + 1):
        repeats = max(MIN_REPEATS, -(-MIN_REPEATED_SPAN // period))
        span = period * repeats
        if span > len(window):
            break
        block = window[-period:]
        if window[-2 * period : -period] != block:
            continue  # cheap rejection before building the full repeated span
        if block.isspace():
            continue  # whitespace runs have their own, more tolerant, limit
        if window[-span:] == block * repeats:
            return period
    return None


def _normalise(text: str) -> str:
    return _NORMALISE.sub(" ", text.lower()).strip()


# Below this length two different steps can differ by a single number ("x = 3" / "x = 5"):
# only identical texts count as repeats there.
MIN_FUZZY_LENGTH = 80


def repeats_earlier(content: str, earlier: list[str], threshold: float = 0.9) -> bool:
    """Whether a step's content says again what an earlier step already said."""
    new = _normalise(content)
    if not new:
        return False
    for old_text in earlier:
        old = _normalise(old_text)
        if not old:
            continue
        if new == old:
            return True
        if min(len(new), len(old)) < MIN_FUZZY_LENGTH:
            continue
        matcher = SequenceMatcher(None, new, old, autojunk=False)
        if matcher.quick_ratio() >= threshold and matcher.ratio() >= threshold:
            return True
    return False
