"""Read the answer out of free text, and normalise it so equal answers compare equal.

Used by the vote of self-consistency and by the evaluation harness, so both agree on what
"the same answer" means.  Numbers win over words: "$1,234.50", "1234.5 dollars" and
"1,234.50." all normalise to ``1234.5``; "3/4" to ``0.75``; "three"/"twice" to ``3``/``2``;
"yes."/"Yes" to ``yes``.  When the caller knows a number is expected (the evaluation knows its
gold answers), ``expect="number"`` also reads "none"/"no r at all" as ``0``.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation, localcontext
from typing import Literal

Expect = Literal["number"] | None

# Where a text says "this is the answer": the last such marker wins.
_MARKERS = re.compile(
    r"(?:final[\s_]+answer|answer|result)\s*(?:is|:|=|：)|答案\s*(?:是|为|：|:)?|结果\s*(?:是|为|：|:)|"
    r"\\boxed\{",
    re.I,
)
_BOLD = re.compile(r"\*\*(.+?)\*\*|__(.+?)__", re.S)
_CODE_SPAN = re.compile(r"`([^`\n]+)`")
# Where a sentence states its result: "the total is 45", "周长是36厘米".
_COPULA = re.compile(r"\b(?:is|are|was|were|equals|comes\s+to)\b|是|为|等于", re.I)
_BOXED = re.compile(r"\\boxed\{([^{}]*)\}")
# A number: optional sign, digits with thousands separators, decimals, or a fraction; a
# mixed number ("1 1/2") is tried first so it is not read as 1.  Not after a Latin letter or
# digit ("x2", "id123"); after a Chinese character it is a number ("年龄是40岁"), though
# Python's \w counts that character as a word character.
_NOT_AFTER = r"(?<![A-Za-z0-9_.])"
_NUMBER = re.compile(
    rf"{_NOT_AFTER}[-−]?\d+ \d+/\d+(?![\d/])"
    rf"|{_NOT_AFTER}[-−]?(?:\d{{1,3}}(?:,\d{{3}})+|\d+)(?:\.\d+)?(?:\s*/\s*\d+(?:\.\d+)?)?(?![\d])"
    rf"|{_NOT_AFTER}[-−]?\.\d+"
)
# Counts written as words ("three times", "twice"), read only where no digit states the answer.
_UNITS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen twenty"
)
_NUMBER_WORDS = {word: i for i, word in enumerate(_UNITS.split())} | {
    "once": 1,
    "twice": 2,
    "thrice": 3,
}
_CHINESE_COUNT = re.compile(r"([零一二两三四五六七八九十])\s*[个次处]")
_CHINESE_DIGITS = {ch: i for i, ch in enumerate("零一二三四五六七八九十")} | {"两": 2}
# "There are no z's", "none": zero, but only when a number is expected (else it is "no").
_NONE_WORDS = {"no", "none", "nothing", "没有"}
# "The letter t does not occur in desert": a count of zero said without a number.
_ABSENT = re.compile(
    r"\b(?:does|do|did)\s*(?:not|n't)\s+(?:occur|appear|exist|show\s+up)\b"
    r"|\bnot\s+(?:present|found|contained)\b|\bno\s+occurrences?\b|不包含|没有出现|不出现",
    re.I,
)
# Above this many digits a "number" is noise (an ID, a hash), not an answer.
_MAX_DIGITS = 60
_YES = {"yes", "true", "correct", "是", "对", "是的", "正确"}
_NO = {"no", "false", "incorrect", "否", "不", "不是", "不对", "错误"}
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
# Control characters (NUL padding from a broken detokeniser, terminal escapes) carry no answer
# but would split "1200" into "1" and "200"; newlines and tabs stay, they separate lines.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _to_decimal(token: str) -> Decimal | None:
    token = token.replace("−", "-").replace(",", "").strip()
    if sum(ch.isdigit() for ch in token) > _MAX_DIGITS:
        return None
    whole = Decimal(0)
    if " " in token.split("/")[0]:  # a mixed number: "1 1/2", "-2 3/4"
        first, token = token.split(" ", 1)
        whole = Decimal(first)
        if first.startswith("-"):
            token = "-" + token
    token = token.replace(" ", "")
    try:
        with localcontext() as ctx:
            ctx.prec = 2 * _MAX_DIGITS
            if "/" in token:
                num, den = token.split("/", 1)
                denominator = Decimal(den)
                if denominator == 0:
                    return None
                return whole + Decimal(num) / denominator
            return whole + Decimal(token)
    except (InvalidOperation, ValueError):
        return None


def format_number(value: Decimal) -> str:
    """Canonical text of a number: no exponent, no trailing zeros, ``-0`` is ``0``.

    Non-integers keep six decimals, so 1/3 and 0.333333 compare equal.
    """
    with localcontext() as ctx:
        # Enough precision that a long number is never rounded (or rejected) while formatting.
        ctx.prec = 4 * _MAX_DIGITS
        if value != value.to_integral():
            value = value.quantize(Decimal("1.000000"))
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


def _number_spans(text: str) -> list[str]:
    """Code spans that hold one number and nothing else (`1224`): a program's output as the
    answer quotes it.  A span of code with numbers in it (`17 * 24`) is not a result."""
    return [
        code
        for code in _CODE_SPAN.findall(text)
        if len(_numbers(code)) == 1 and _NUMBER.sub("", code).strip(" .,") == ""
    ]


def _stated_number(text: str) -> Decimal | None:
    """The number a short span states: the result of its last ``=``, else the number after its
    last "is"/"是", else its first number.

    "16 - 3 - 4 = 9 eggs" states 9, not 16; "the product of 17 and 24 is 408" states 408 and
    "打八折后是160元，再减20元后是140元" 140: an answer that restates what it started from (as a
    follow-up's does) states its result after the verb, not first.
    """
    equals = text.rfind("=")
    if equals >= 0:
        after = _numbers(text[equals + 1 :])
        if after:
            return after[0]
    numbers = _numbers(text)
    if len(numbers) > 1:
        for verb in reversed(list(_COPULA.finditer(text))):
            after = _numbers(text[verb.end() :])
            if after:
                return after[0]
    return numbers[0] if numbers else None


def _words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(unicodedata.normalize("NFKC", text))]


def _number_word(text: str) -> int | None:
    for word in _words(text):
        if word in _NUMBER_WORDS:
            return _NUMBER_WORDS[word]
    match = _CHINESE_COUNT.search(text)
    return _CHINESE_DIGITS[match.group(1)] if match else None


def _word_answer(text: str) -> str | None:
    """yes/no among the first three words, else the reply's only word, else None."""
    words = _words(text)
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


def _read(span: str, expect: Expect) -> str | None:
    """The answer one span states, or None: a number first, then yes/no, a count in words,
    or a single word."""
    quoted = _number_spans(span)
    number = _numbers(quoted[0])[0] if quoted else _stated_number(span)
    if number is not None:
        return format_number(number)
    if expect == "number":
        counted = _number_word(span)
        if counted is not None:
            return str(counted)
        if any(word in _NONE_WORDS for word in _words(span)[:4]) or _ABSENT.search(span):
            return "0"
        return None
    word = _word_answer(span)
    if word in ("yes", "no"):
        return word
    counted = _number_word(span)
    return str(counted) if counted is not None else word


def last_boxed(text: str) -> str | None:
    """What the last ``\\boxed{...}`` of ``text`` holds, or None when nothing is boxed."""
    boxed = _BOXED.findall(text)
    return boxed[-1] if boxed else None


def _focus(text: str) -> str:
    """The part of ``text`` that states the answer, when it says so explicitly."""
    boxed = last_boxed(text)
    if boxed is not None:
        return boxed
    markers = list(_MARKERS.finditer(text))
    if markers:
        tail = text[markers[-1].end() :]
        line = tail.strip().splitlines()[0] if tail.strip() else ""
        if line:
            return line
    return ""


def extract_answer(text: str | None, expect: Expect = None) -> str | None:
    """The normalised answer stated in ``text``, or None when none can be read.

    Order of evidence: an explicit marker ("Answer: …", "答案：…", ``\\boxed{}``), then the
    first bold span, then the first code span with a number, then the first line when it is
    short (or the whole reply when it is one line), then the last number of the text.  Within
    a span a number in a code span wins, then the result of its last ``=``, then its first
    number.  ``expect="number"`` skips word answers and reads "none" as 0.
    """
    if not text:
        return None
    text = _CONTROL.sub("", unicodedata.normalize("NFKC", text)).strip()
    if not text:
        return None
    candidates: list[str] = []
    focus = _focus(text)
    if focus:
        candidates.append(focus)
    bold = [a or b for a, b in _BOLD.findall(text)]
    candidates.extend(bold[:1])
    # A number set in code (`1224`, as a program's output is quoted) is marked as the result,
    # as a bold one is: "that 408 is multiplied by 3, resulting in `1224`" states 1224.
    candidates.extend(_number_spans(text)[:1])
    first_line = text.splitlines()[0]
    if len(text.splitlines()) == 1 or len(first_line.split()) <= 12:
        candidates.append(first_line)
    for candidate in candidates:
        answer = _read(candidate, expect)
        if answer is not None:
            return answer
    numbers = _numbers(text)
    if numbers:
        return format_number(numbers[-1])
    if expect == "number":
        counted = _number_word(text)
        return str(counted) if counted is not None else None
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


def expected_kind(gold: str | None) -> Expect:
    """What kind of answer a normalised gold answer calls for (a hint for extract_answer)."""
    return "number" if gold is not None and _to_decimal(gold) is not None else None


def extract_answer_for(text: str | None, gold: str | None) -> str | None:
    """The answer in ``text``, read as the kind ``gold`` is (the eval's one scoring rule)."""
    return extract_answer(text, expected_kind(gold))


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
