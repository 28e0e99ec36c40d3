"""Read the answer out of free text, and normalise it so equal answers compare equal.

Used by the vote of self-consistency and by the evaluation harness, so both agree on what
"the same answer" means.  Numbers win over words: "$1,234.50", "1234.5 dollars" and
"1,234.50." all normalise to ``1234.5``; "3/4" to ``0.75``; "yes."/"Yes" to ``yes``.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

# Where a text says "this is the answer": the last such marker wins.
_MARKERS = re.compile(
    r"(?:final\s+answer|answer|result)\s*(?:is|:|=|：)|答案\s*(?:是|为|：|:)?|结果\s*(?:是|为|：|:)|"
    r"\\boxed\{",
    re.I,
)
_BOLD = re.compile(r"\*\*(.+?)\*\*|__(.+?)__", re.S)
_BOXED = re.compile(r"\\boxed\{([^{}]*)\}")
# A number: optional sign, digits with thousands separators, decimals, or a fraction.
_NUMBER = re.compile(
    r"(?<![\w.])[-−]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:\s*/\s*\d+(?:\.\d+)?)?(?![\d])"
    r"|(?<![\w.])[-−]?\.\d+"
)
_YES = {"yes", "true", "correct", "是", "对", "是的", "正确"}
_NO = {"no", "false", "incorrect", "否", "不", "不是", "不对", "错误"}
_WORD = re.compile(r"[^\W_]+", re.UNICODE)


def _to_decimal(token: str) -> Decimal | None:
    token = token.replace("−", "-").replace(",", "").replace(" ", "")
    try:
        if "/" in token:
            num, den = token.split("/", 1)
            denominator = Decimal(den)
            if denominator == 0:
                return None
            return Decimal(num) / denominator
        return Decimal(token)
    except (InvalidOperation, ValueError):
        return None


def format_number(value: Decimal) -> str:
    """Canonical text of a number: no exponent, no trailing zeros, ``-0`` is ``0``."""
    value = value.quantize(Decimal("1.000000")) if value != value.to_integral() else value
    text = format(value.normalize(), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _numbers(text: str) -> list[Decimal]:
    out = []
    for match in _NUMBER.finditer(text):
        value = _to_decimal(match.group())
        if value is not None:
            out.append(value)
    return out


def _word_answer(text: str) -> str | None:
    words = [w.lower() for w in _WORD.findall(unicodedata.normalize("NFKC", text))]
    if not words:
        return None
    for word in words[:3]:
        if word in _YES:
            return "yes"
        if word in _NO:
            return "no"
    if len(words) == 1:
        return words[0]
    return None


def _focus(text: str) -> str:
    """The part of ``text`` that states the answer, when it says so explicitly."""
    boxed = _BOXED.findall(text)
    if boxed:
        return boxed[-1]
    markers = list(_MARKERS.finditer(text))
    if markers:
        tail = text[markers[-1].end() :]
        line = tail.strip().splitlines()[0] if tail.strip() else ""
        if line:
            return line
    return ""


def extract_answer(text: str | None) -> str | None:
    """The normalised answer stated in ``text``, or None when none can be read.

    Order of evidence: an explicit marker ("Answer: …", "答案：…", ``\\boxed{}``), then the
    first bold span, then — for a one-line reply — the text itself, then the last number.
    """
    if not text or not text.strip():
        return None
    text = unicodedata.normalize("NFKC", text).strip()
    candidates: list[str] = []
    focus = _focus(text)
    if focus:
        candidates.append(focus)
    bold = [a or b for a, b in _BOLD.findall(text)]
    candidates.extend(bold[:1])
    first_line = text.splitlines()[0]
    if len(text.splitlines()) == 1 or len(first_line.split()) <= 12:
        candidates.append(first_line)
    for candidate in candidates:
        numbers = _numbers(candidate)
        if numbers:
            return format_number(numbers[0])
        word = _word_answer(candidate)
        if word is not None:
            return word
    numbers = _numbers(text)
    if numbers:
        return format_number(numbers[-1])
    return _word_answer(text)


def normalise_gold(answer: object) -> str | None:
    """A dataset's reference answer in the same canonical form as :func:`extract_answer`."""
    text = str(answer).strip()
    if "####" in text:  # GSM8K's raw format: reasoning, then "#### 42"
        text = text.rsplit("####", 1)[1]
    numbers = _numbers(text)
    if numbers:
        return format_number(numbers[0])
    return _word_answer(text) or (text.lower() or None)


def same_answer(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return False
    if a == b:
        return True
    x, y = _to_decimal(a), _to_decimal(b)
    return x is not None and y is not None and abs(x - y) <= Decimal("1e-6")


@dataclass(frozen=True)
class Vote:
    """The outcome of a majority vote over normalised answers."""

    winner: str | None  # None when no sample produced a readable answer
    counts: dict[str, int]
    voters: int  # samples with a readable answer

    @property
    def agreement(self) -> float:
        return self.counts.get(self.winner, 0) / self.voters if self.winner and self.voters else 0.0


def vote(answers: Sequence[str | None]) -> Vote:
    """Majority over the readable answers; a tie goes to the answer that appeared first."""
    readable = [a for a in answers if a is not None]
    if not readable:
        return Vote(None, {}, 0)
    counts = Counter(readable)
    best = max(counts.values())
    winner = next(a for a in readable if counts[a] == best)
    return Vote(winner, dict(counts), len(readable))


def decided(answers: Iterable[str | None], total: int) -> bool:
    """Whether the leading answer can no longer be overtaken by the samples still to come."""
    answers = list(answers)
    counts = Counter(a for a in answers if a is not None)
    if not counts:
        return False
    ranked = counts.most_common(2)
    lead = ranked[0][1]
    second = ranked[1][1] if len(ranked) > 1 else 0
    remaining = total - len(answers)
    return lead > second + remaining
