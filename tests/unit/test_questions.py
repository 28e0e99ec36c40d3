"""Which questions can be asked, and the typed reason each front end words its own way."""

from __future__ import annotations

import pytest

import thinkchain
from thinkchain.chain.labels import label, step_heading
from thinkchain.chain.questions import InvalidQuestion, clean_question
from thinkchain.chain.text import replace_lone_surrogates


@pytest.mark.parametrize("question", ["", "   \n\t  ", "\x00\x01\x02", "\x7f \x1b"])
def test_a_question_with_nothing_to_ask_is_empty(question: str) -> None:
    with pytest.raises(InvalidQuestion) as caught:
        clean_question(question, 100)
    assert caught.value.reason == "empty"
    assert str(caught.value) == "the question is empty"
    assert (caught.value.length, caught.value.limit) == (None, None)


def test_a_long_question_says_how_long_it_is_and_what_the_limit_is() -> None:
    with pytest.raises(InvalidQuestion) as caught:
        clean_question("  " + "x" * 40_000 + "  ", 32_000)
    err = caught.value
    assert (err.reason, err.length, err.limit) == ("too_long", 40_000, 32_000)
    assert str(err) == "the question is 40,000 characters long; the limit is 32,000"


def test_a_question_at_the_limit_is_accepted_once_cleaned() -> None:
    assert clean_question("\x00" + "x" * 10 + "\x07", 10) == "x" * 10


@pytest.mark.parametrize("question", [None, 42, b"bytes", ["a list"]])
def test_anything_but_text_is_refused_with_its_type(question: object) -> None:
    with pytest.raises(InvalidQuestion) as caught:
        clean_question(question, 100)
    assert caught.value.reason == "not_text"
    assert str(caught.value) == f"the question must be text, not {type(question).__name__}"


def test_it_is_a_value_error_exported_by_the_package() -> None:
    assert issubclass(InvalidQuestion, ValueError)
    assert thinkchain.InvalidQuestion is InvalidQuestion


def test_control_characters_go_and_surrounding_space_is_trimmed() -> None:
    assert clean_question("  What\x00 is\x07 2+2?\n", 100) == "What is 2+2?"
    assert clean_question("line one\nline\ttwo", 100) == "line one\nline\ttwo"


def test_lone_surrogates_become_the_replacement_character() -> None:
    assert clean_question("A\ud800?", 100) == "A\ufffd?"
    assert replace_lone_surrogates("x\udfff\ud83d\ude00") == "x\ufffd😀"  # a pair stays one
    assert replace_lone_surrogates("plain 中文") == "plain 中文"


def test_step_labels_in_both_languages() -> None:
    assert label("en", "verification") == "Verification"
    assert label("zh", "verification") == "验证"
    assert label("en", "untitled_step", index=3) == "Step 3"
    assert label("zh", "untitled_step", index=3) == "第 3 步"
    assert step_heading(2, "Count {the} letters", "en") == "Step 2: Count {the} letters"
    assert step_heading(2, "数字母", "zh") == "第 2 步：数字母"
    assert step_heading(4, "", "en") == "Step 4: "  # what is written before a title streams in
    with pytest.raises(ValueError, match="fr"):
        label("fr", "verification")
