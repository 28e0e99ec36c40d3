"""The answer normaliser: what the vote and the evaluation count as "the same answer"."""

from __future__ import annotations

import pytest

from thinkchain.chain.answers import (
    decided,
    expected_kind,
    extract_answer,
    extract_answer_for,
    format_number,
    normalise_gold,
    same_answer,
    vote,
)

# (reply text, what a reader would call its answer)
FREE_TEXT = [
    # numbers: commas, currency, units, percentages, fractions, trailing full stops
    ("42", "42"),
    ("1,234", "1234"),
    ("$1,234.50", "1234.5"),
    ("1234.50.", "1234.5"),
    ("€18", "18"),
    ("18 dollars.", "18"),
    ("It takes 5 km", "5"),
    ("45%", "45"),
    ("3/4", "0.75"),
    ("1 1/2 cups", "1.5"),
    ("-7", "-7"),
    ("−7", "-7"),
    ("0.50", "0.5"),
    ("-0", "0"),
    (".5", "0.5"),
    ("1/3", "0.333333"),
    # explicit markers win over everything else; the last marker counts
    ("Answer: 18", "18"),
    ("The answer is $18.", "18"),
    ("First I thought the answer is 12.\nOn reflection the final answer is 14.", "14"),
    ("Reasoning: 16 - 3 - 4 = 9 eggs.\n9 * 2 = 18\nAnswer: $18", "18"),
    ("We get \\boxed{72} in the end.", "72"),
    ('Final_answer: "The word contains 3 letters l, not 7."', "3"),
    ("答案是 18", "18"),
    ("结果是：7 个", "7"),
    # a number written against Chinese characters, as Chinese replies do
    ("我现在的年龄是40岁。", "40"),
    ("每个人将得到2个 slices。", "2"),
    ("总共需要1,250元", "1250"),
    # but not a digit inside a Latin name or identifier
    ("Model x2 says 5", "5"),
    # a bold span states the answer
    ("There are **3** letters r in *strawberry* (positions 3, 8 and 9).", "3"),
    ("Janet makes **$18** every day.\n\nShe sells 9 eggs at $2 each.", "18"),
    # within a span, the result of its last "=" wins over its first number
    ("16 - 3 - 4 = 9 eggs", "9"),
    ("**9 * 2 = 18**", "18"),
    # a short first line states the answer; a long reply ends with it
    ("18\n\nJanet sells 9 eggs for $2 each.", "18"),
    ("To solve this we look at each part of the problem carefully and slowly.\nShe has 5.", "5"),
    # counts written as words
    ("There are three r letters in strawberry.", "3"),
    ("Three.", "3"),
    ("The letter s appears twice.", "2"),
    ("strawberry中有三个r", "3"),
    # yes / no, in English and Chinese
    ("yes.", "yes"),
    ("Yes, it is prime.", "yes"),
    ("No", "no"),
    ("False.", "no"),
    ("是的，它是质数。", "yes"),
    # a single letter or word
    ("B", "b"),
    ("(B)", "b"),
    ("The answer is C.", "c"),
    ("Strawberry.", "strawberry"),
    # control characters carry nothing: NUL padding between tokens, a stray escape
    ("1\x00\x00\x002\x00\x000\x000", "1200"),
    ("\x1b[1mAnswer: 7\x1b[0m", "7"),
]

UNREADABLE = [
    None,
    "",
    "   \n ",
    "I do not know.",
    "The question cannot be answered from the information given.",
    "1/0",
    "\x00\x00\x00",
]


@pytest.mark.parametrize(("text", "expected"), FREE_TEXT)
def test_extract_answer_reads_free_text(text: str, expected: str) -> None:
    assert extract_answer(text) == expected


@pytest.mark.parametrize("text", UNREADABLE)
def test_extract_answer_gives_none_when_no_answer_is_stated(text: str | None) -> None:
    assert extract_answer(text) is None


# With a number expected (the evaluation knows its gold answers are numbers).
EXPECTING_NUMBER = [
    ("There are no z letters in banana.", "0"),
    ("None.", "0"),
    ("No.", "0"),
    ("Zero", "0"),
    ("The letter r occurs once.", "1"),
    ("The answer is B.", None),  # a letter is not a number
    ("Yes.", None),
    ("Answer: 7", "7"),
    ("The letter p appears two times; wait, let me count again", "2"),
]


@pytest.mark.parametrize(("text", "expected"), EXPECTING_NUMBER)
def test_extract_answer_expecting_a_number(text: str, expected: str | None) -> None:
    assert extract_answer(text, "number") == expected


def test_without_a_hint_no_stays_no() -> None:
    # For a yes/no question "There are no ..." must not become 0.
    assert extract_answer("No, there are none.") == "no"


def test_huge_numbers_do_not_crash_and_are_kept_exactly() -> None:
    assert extract_answer("1234567890123456789012345678.5") == "1234567890123456789012345678.5"
    assert extract_answer("The ID is " + "9" * 80, "number") is None


@pytest.mark.parametrize(
    ("gold", "expected"),
    [
        ("#### 1,000", "1000"),
        ("Natalia sold 48/2 = 24 clips in May.\n#### 72", "72"),
        (72, "72"),
        ("18.0", "18"),
        ("$5", "5"),
        ("Yes", "yes"),
        ("B", "b"),
        ("strawberry", "strawberry"),
    ],
)
def test_normalise_gold(gold: object, expected: str) -> None:
    assert normalise_gold(gold) == expected


def test_expected_kind_follows_the_gold_answer() -> None:
    assert expected_kind("72") == "number"
    assert expected_kind("-0.5") == "number"
    assert expected_kind("yes") is None
    assert expected_kind(None) is None


@pytest.mark.parametrize(
    "reply",
    [
        'The letter "t" does not occur in the word "bookkeeper".',
        'The letter "i" does not appear in the word "bubble".',
        "There are no occurrences of the letter x.",
        "字母 z 没有出现在这个单词里。",
    ],
)
def test_a_count_of_zero_said_in_words_is_zero(reply: str) -> None:
    assert extract_answer(reply, "number") == "0"
    assert extract_answer("It does not appear to be 4.", "number") == "4"  # a number wins


def test_a_reply_is_read_as_the_kind_of_answer_its_gold_is() -> None:
    # The same words score differently against a count and against a yes/no question.
    reply = "No, there are none."
    assert extract_answer_for(reply, normalise_gold("0")) == "0"
    assert extract_answer_for(reply, normalise_gold("Yes")) == "no"
    assert extract_answer_for(None, "3") is None


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("18", "18", True),
        ("0.333333", "0.3333333", True),  # within 1e-6
        ("0.5", "0.6", False),
        ("yes", "yes", True),
        ("yes", "no", False),
        (None, "18", False),
        ("18", None, False),
        (None, None, False),  # two unreadable answers are not "the same answer"
    ],
)
def test_same_answer(a: str | None, b: str | None, same: bool) -> None:
    assert same_answer(a, b) is same


def test_format_number_is_canonical() -> None:
    from decimal import Decimal

    assert format_number(Decimal("18.000")) == "18"
    assert format_number(Decimal("-0.0")) == "0"
    assert format_number(Decimal("1E+3")) == "1000"
    assert format_number(Decimal("2.50")) == "2.5"


# ---- the vote -------------------------------------------------------------------------------

VOTES = [
    # (normalised answers in sample order, winner, counts, voters)
    (["18", "18", "17"], "18", {"18": 2, "17": 1}, 3),
    (["17", "18", "18"], "18", {"17": 1, "18": 2}, 3),
    # a tie goes to the answer that appeared first
    (["17", "18"], "17", {"17": 1, "18": 1}, 2),
    (["18", "17", "17", "18"], "18", {"18": 2, "17": 2}, 4),
    # unreadable answers do not vote
    ([None, None, "3"], "3", {"3": 1}, 1),
    ([None, "3", None, "4", "4"], "4", {"3": 1, "4": 2}, 3),
    # nobody readable: no winner
    ([None, None], None, {}, 0),
    ([], None, {}, 0),
]


@pytest.mark.parametrize(("keys", "winner", "counts", "voters"), VOTES)
def test_vote(keys: list[str | None], winner: str | None, counts: dict, voters: int) -> None:
    result = vote(keys)
    assert result.winner == winner
    assert result.counts == counts
    assert result.voters == voters


def test_vote_agreement() -> None:
    assert vote(["3", "3", "4", None]).agreement == pytest.approx(2 / 3)
    assert vote([None]).agreement == 0.0


def test_the_vote_uses_the_normaliser() -> None:
    replies = ["There are **3** r's.", "Answer: three", "3.", "$3.00", "4"]
    result = vote([extract_answer(r) for r in replies])
    assert result.winner == "3"
    assert result.counts == {"3": 4, "4": 1}


@pytest.mark.parametrize(
    ("keys", "total", "is_decided"),
    [
        (["3", "3", "3"], 5, True),  # 3 of 5: the other two cannot catch up
        (["3", "3"], 5, False),  # 2 vs up to 3 others
        (["3", "3", "4"], 5, False),  # 2 vs 1 + 2 remaining
        (["3", "3", "4", "3"], 5, True),
        (["3", "4", "5", "6", "7"], 5, False),  # all counted, all tied: not decided...
        ([None, None, None], 5, False),  # ...and nothing readable is never decided
        (["3", None, None, None], 5, False),  # the last sample could still tie
        (["3", None, None, None, None], 5, True),
        (["3"], 1, True),
    ],
)
def test_decided(keys: list[str | None], total: int, is_decided: bool) -> None:
    assert decided(keys, total) is is_decided


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # An answer that restates what it started from states its result after the verb...
        ("The product of 17 and 24 is 408.", "408"),
        ("The product of 17 and 24 is 408, and times 3 the result is 1224.", "1224"),
        ("一个边长为9厘米的正方形的周长是36厘米。", "36"),
        ("一件衣服原价200元，打八折后是160元，再减20元后是140元。", "140"),
        ("After 3 days, the amount is 40 kg.", "40"),
        # ...while a sentence without one still states its first number.
        ("There are 3 letters r in the word raspberry.", "3"),
        ("The letter e appears 4 times in excellence.", "4"),
        ("It takes 4 hours at 60 km per hour.", "4"),
        ("16 - 3 - 4 = 9 eggs, so 9 is what is left of 16.", "9"),  # "=" still comes first
        # A number quoted as code (a program's output) is the result, as a bold one is.
        (
            "The product of 17 and 24 is 408, and then that 408 is multiplied by 3, "
            "resulting in `1224`.",
            "1224",
        ),
        ("The result is `204.0`, because 15% of 240 is 36.0.", "204"),
        ("The program `print(word.count('r'))` printed 3, so there are 3.", "3"),
        ("The result of `17 * 24` is 408.", "408"),  # code with numbers is not a result
    ],
)
def test_a_result_is_read_after_its_verb_when_the_sentence_restates_numbers(text, expected):
    assert extract_answer(text, "number") == expected
