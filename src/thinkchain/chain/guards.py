"""Detect output that has stopped saying anything: endless whitespace, loops, repeated steps.

Small models and some JSON modes degenerate into whitespace or a phrase repeated until
``max_tokens``.  Waiting that out costs up to a thousand tokens a step; these checks cut the
stream as soon as the pattern is unmistakable.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from difflib import SequenceMatcher

from thinkchain.chain.events import Usage

# Thresholds chosen so that legitimate text (indented code, tables, lists) never trips them.
MAX_WHITESPACE_RUN = 160
MIN_REPEATED_SPAN = 240  # characters covered by the repeating tail before we call it a loop
MIN_REPEATS = 4
MAX_PERIOD = 200
_CHECK_EVERY = 24  # characters between two loop checks
TEMPERATURE_BUMP = 0.3  # after degenerate output, retry a little hotter to leave the loop

_NORMALISE = re.compile(r"\W+", re.UNICODE)


class Degenerated(Exception):
    """A stream cut by the guard: why, the text it had produced, and what that cost."""

    def __init__(self, reason: str, text: str, usage: Usage) -> None:
        super().__init__(reason)
        self.reason = reason
        self.text = text
        self.usage = usage


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
    # rstrip walks back from the end only; a regex anchored at \Z would scan the whole text.
    run = len(text) - len(text.rstrip())
    if run >= MAX_WHITESPACE_RUN:
        return f"the output degenerated into {run} characters of whitespace"
    period = _repeating_period(text)
    if period:
        return f"the output degenerated into a loop repeating every {period} characters"
    return None


_NEEDLE = 8  # characters at the very end whose earlier copies propose the candidate periods


def _repeating_period(text: str) -> int | None:
    """The period of a block repeated back to back at the end of ``text``, if it covers enough.

    A tail with period p has its last characters again exactly p characters earlier, so only
    the distances to earlier copies of the last few characters (found by ``rfind``, in C) are
    candidates: ordinary text proposes a handful, not all MAX_PERIOD periods.  They come
    nearest first, so the smallest period wins.
    """
    n = len(text)
    if n < MIN_REPEATED_SPAN:
        return None
    window = text[-(MAX_PERIOD * MIN_REPEATS + MIN_REPEATED_SPAN) :]
    size = len(window)
    needle = window[-_NEEDLE:]
    end = size - 1  # an earlier copy ends before the last character
    while True:
        start = window.rfind(needle, 0, end)
        if start < 0:
            return None
        period = size - _NEEDLE - start
        if period > MAX_PERIOD:
            return None
        end = start + _NEEDLE - 1
        repeats = max(MIN_REPEATS, -(-MIN_REPEATED_SPAN // period))
        span = period * repeats
        if span > size:
            return None  # longer periods need even more text
        block = window[-period:]
        if window[-2 * period : -period] != block or block.isspace():
            continue  # whitespace runs have their own, more tolerant, limit
        if window[-span:] == block * repeats:
            return period


def _normalise(text: str) -> str:
    return _NORMALISE.sub(" ", text.lower()).strip()


# An answer this long (letters and digits, spaces folded) found word for word in the chain's
# own instructions was copied from them, not written: a small model that lost its way once
# "answered" a GSM8K question with a sentence of the code-step layout.
MIN_COPIED_CHARS = 24
COPIED_INSTRUCTIONS = "the final answer copied the instructions instead of answering"


def copies_instructions(text: str, instructions: Iterable[str]) -> bool:
    """Whether ``text`` is a passage of ``instructions`` (the prompts thinkchain wrote, never
    the user's words) rather than something the model wrote itself."""
    copied = _normalise(text)
    if len(copied) < MIN_COPIED_CHARS:
        return False
    return any(copied in _normalise(instruction) for instruction in instructions)


# Below this length two different steps can differ by a single number ("x = 3" / "x = 5"):
# only identical texts count as repeats there.
MIN_FUZZY_LENGTH = 80


_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


def _numbers(text: str) -> set[str]:
    return set(_NUMBER.findall(text))


# Steps in a row written from one template (the same text, other numbers) before the run
# counts as a loop: "Day 9: doubled again, 80 × 2 = 160", "Day 10: ..." until the step limit.
# Problems with a few parallel parts (three shops, four children) stay below it.
TEMPLATE_RUN = 5


def _template(text: str) -> str:
    # Normalised text has no "." or ",", so each number is one run of digits here.
    return _NUMBER.sub("#", _normalise(text))


def continues_a_template_run(content: str, earlier: list[str], threshold: float = 0.9) -> bool:
    """Whether ``content`` makes TEMPLATE_RUN steps in a row that differ only in numbers."""
    if len(earlier) < TEMPLATE_RUN - 1:
        return False
    template = _template(content)
    if not template:
        return False
    for old in earlier[-(TEMPLATE_RUN - 1) :]:
        other = _template(old)
        if other == template:
            continue
        # autojunk off, as in the repeat check: above 200 characters difflib otherwise drops
        # every frequent letter and two near-identical steps compare as unrelated.
        if SequenceMatcher(None, other, template, autojunk=False).ratio() < threshold:
            return False
    return True


def repeats_earlier(content: str, earlier: list[str], threshold: float = 0.9) -> bool:
    """Whether a step's content says again what an earlier step already said.

    Wording alone misleads: "time to run = 0.5 / 3 × 60 = 10 minutes" and "time to walk =
    0.5 / 1 × 60 = 30 minutes" are 94 % alike, yet the second is the next piece of work.  A
    step that brings a number the earlier one did not have is therefore never its repeat; a
    model stuck in a loop writes the same numbers again.
    """
    new = _normalise(content)
    if not new:
        return False
    new_numbers = _numbers(content)
    # The new text is the matcher's second sequence: its index is built once, and only when
    # a pair survives the cheap bounds below.
    matcher: SequenceMatcher[str] | None = None
    new_counts = Counter(new)
    for old_text in earlier:
        old = _normalise(old_text)
        if not old:
            continue
        if new == old:
            return True
        if not new_numbers <= _numbers(old_text):
            continue  # new numbers: new work, however alike the wording
        if min(len(new), len(old)) < MIN_FUZZY_LENGTH:
            continue
        if 2 * min(len(new), len(old)) < threshold * (len(new) + len(old)):
            continue  # lengths alone rule it out
        if _shared_characters_ratio(new_counts, Counter(old)) < threshold:
            continue  # an upper bound of ratio(), counted in C rather than char by char
        if matcher is None:
            matcher = SequenceMatcher(None, old, new, autojunk=False)
        else:
            matcher.set_seq1(old)
        if matcher.ratio() >= threshold:
            return True
    return False


def _shared_characters_ratio(a: Counter[str], b: Counter[str]) -> float:
    """difflib's ``quick_ratio`` from two character counts: 2 × shared / total."""
    shared = sum((a & b).values())
    return 2 * shared / (a.total() + b.total())


def why_repeated(content: str, earlier: list[str]) -> str | None:
    """Why a step says nothing new, in words for the user; None when it does."""
    if not earlier:
        return None
    if repeats_earlier(content, earlier):
        return "it repeats an earlier step"
    if continues_a_template_run(content, earlier):
        return f"it only changes the numbers of the {TEMPLATE_RUN - 1} steps before it"
    return None
