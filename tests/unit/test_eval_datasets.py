"""Evaluation datasets: the letters generator, JSONL files, and GSM8K when offline."""

from __future__ import annotations

import json
import re
import sys
import types
from pathlib import Path

import pytest

from thinkchain.eval.datasets import DatasetError, load_dataset, read_jsonl
from thinkchain.eval.letters import (
    LEVELS,
    LONG_WORDS,
    PHRASINGS,
    SHORT_WORDS,
    generate,
    letters_item,
)

WORDS = {*SHORT_WORDS, *LONG_WORDS}

SHARED_GSM8K = Path(__file__).resolve().parents[3] / "shared/datasets/gsm8k_train_500.jsonl"


def _asked(question: str) -> tuple[str, str]:
    """(letter, text) as a reader of the question sees them."""
    quoted = re.findall(r'"([^"]+)"', question)
    if len(quoted) == 2:
        first, second = quoted
        return (first, second) if len(first) == 1 else (second, first)
    match = re.match(r"How many letters (\w) are in the word (\w+)\?", question)
    assert match, question
    return match.group(1), match.group(2)


def test_letters_are_deterministic_and_ids_are_stable() -> None:
    assert generate(30, seed=7) == generate(30, seed=7)
    assert generate(30, seed=7) != generate(30, seed=8)
    # Asking for more items later appends: the first ones (and their ids) do not change.
    assert generate(60, seed=7)[:30] == generate(30, seed=7)
    ids = [item.id for item in generate(120, seed=7)]
    assert len(set(ids)) == len(ids)


def test_letters_cycle_through_every_level() -> None:
    items = generate(len(LEVELS) * 5, seed=1)
    assert [item.level for item in items[: len(LEVELS)]] == list(LEVELS)
    assert {item.level: 0 for item in items}.keys() == set(LEVELS)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_letters_answers_are_exact_counts_of_what_the_question_shows(seed: int) -> None:
    for item in generate(120, seed=seed):
        letter, text = _asked(item.question)
        if item.level == "case":
            assert "upper-case and lower-case" in item.question
            expected = text.lower().count(letter.lower())
        else:
            expected = text.count(letter)
        assert item.answer == str(expected), item


def test_letters_levels_mean_what_they_say() -> None:
    for item in generate(300, seed=3):
        _, text = _asked(item.question)
        count = int(item.answer)
        if item.level == "absent":
            assert count == 0
        elif item.level == "repeated":
            assert count >= 3
        elif item.level == "long":
            assert len(text) >= 10 and count >= 1
        elif item.level == "short":
            assert len(text) <= 7 and count >= 1
        elif item.level == "phrase":
            assert 2 <= len(text.split()) <= 4 and count >= 1
        elif item.level == "case":
            assert text != text.lower() and count >= 1


def test_one_level_only() -> None:
    data = load_dataset("letters:repeated", n=10)
    assert data.name == "letters-repeated"
    assert {item.level for item in data.items} == {"repeated"}
    assert data.items[0].id == "letters-repeated-0-0000"
    assert all(w in LONG_WORDS or len(w) < 10 for w in [_asked(i.question)[1] for i in data.items])


def test_strawberry_is_in_the_family() -> None:
    items = [letters_item(i, seed=s, level="repeated") for s in range(5) for i in range(40)]
    assert any("strawberry" in item.question for item in items)


def test_letters_default_size_and_unknown_level() -> None:
    assert len(load_dataset("letters").items) == 200
    with pytest.raises(DatasetError, match="unknown letters level 'tiny'"):
        load_dataset("letters:tiny")


def _write(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "data.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_jsonl_dataset(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        [
            json.dumps({"id": "q1", "question": "2+2?", "answer": 4}),
            "",
            json.dumps({"question": "3+3?", "answer": "6"}),  # no id: its line number
        ],
    )
    data = load_dataset(str(path))
    assert data.name == "data"
    assert [(i.id, i.question, i.answer) for i in data.items] == [
        ("q1", "2+2?", "4"),
        ("line-3", "3+3?", "6"),
    ]
    assert len(load_dataset(str(path), n=1).items) == 1


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (["{not json"], "line 1: not a JSON object"),
        (["[1, 2]"], "line 1: not a JSON object"),
        ([json.dumps({"id": "a", "question": "q"})], "line 1: no answer"),
        (
            [
                json.dumps({"id": "a", "question": "q", "answer": 1}),
                json.dumps({"id": "a", "question": "r", "answer": 2}),
            ],
            "line 2: the id 'a' was used before",
        ),
        ([""], "holds no items"),
    ],
)
def test_jsonl_problems_are_one_clear_sentence(tmp_path: Path, lines, message) -> None:
    with pytest.raises(DatasetError, match=re.escape(message)):
        load_dataset(str(_write(tmp_path, lines)))


def test_unknown_dataset() -> None:
    with pytest.raises(DatasetError, match=r"no such dataset: nowhere\.jsonl"):
        load_dataset("nowhere.jsonl")


@pytest.mark.skipif(not SHARED_GSM8K.is_file(), reason="the shared GSM8K file is not here")
def test_the_shared_gsm8k_file_reads_by_path() -> None:
    data = load_dataset(str(SHARED_GSM8K))  # all of it: line 281 holds a U+2028
    assert len(data.items) == 500
    assert all(item.answer.lstrip("-").replace(".", "").isdigit() for item in data.items)
    assert len(load_dataset(str(SHARED_GSM8K), n=200).items) == 200


def test_line_separators_inside_json_strings_do_not_split_an_item(tmp_path: Path) -> None:
    question = "Line one\u2028line two\u0085and three: 2+2?"
    path = tmp_path / "data.jsonl"
    path.write_text(
        json.dumps({"id": "a", "question": question, "answer": 4}, ensure_ascii=False)
        + "\r\n"
        + json.dumps({"id": "b", "question": "3+3?", "answer": 6})
        + "\r\n",
        encoding="utf-8",
    )
    items = load_dataset(str(path)).items
    assert [(i.id, i.question, i.answer) for i in items] == [
        ("a", question, "4"),
        ("b", "3+3?", "6"),
    ]


def test_gsm8k_without_the_datasets_library(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "datasets", None)  # makes `import datasets` fail
    with pytest.raises(DatasetError, match="needs the Hugging Face `datasets` library"):
        load_dataset("gsm8k", n=5)


def test_gsm8k_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = types.ModuleType("datasets")

    def load_dataset_offline(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'openai/gsm8k' on the Hub (LocalEntryNotFoundError)")

    fake.load_dataset = load_dataset_offline  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "datasets", fake)
    with pytest.raises(DatasetError, match=r"could not load gsm8k .*\(offline\?\): Couldn't reach"):
        load_dataset("gsm8k")


def test_gsm8k_rows_keep_only_the_final_number(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = types.ModuleType("datasets")
    rows = [{"question": "q", "answer": "48/2 = 24\n#### 1,072"}]
    fake.load_dataset = lambda *a, **k: rows  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "datasets", fake)
    data = load_dataset("gsm8k:train")
    assert data.name == "gsm8k-train"
    assert [(i.id, i.answer) for i in data.items] == [("gsm8k-train-0", "1072")]


def test_read_jsonl_stops_at_n(tmp_path: Path) -> None:
    lines = [json.dumps({"id": str(i), "question": "q", "answer": i}) for i in range(10)]
    assert len(read_jsonl(_write(tmp_path, lines), 3)) == 3


def _letter_asked(question: str) -> str:
    """The letter a phrasing asks about, as a reader finds it: "letter E", "many r's",
    "many ls", "the Ls", "count o", "does a appear", "o in …", "几个s", "字母l"."""
    for pattern in (
        r"\bletters? ([A-Za-z])\b",
        r"\bmany ([A-Za-z])(?:'?s)?\b",
        r"\bthe ([A-Z])s\b",
        r"\b(?:count|of|does) ([a-z])\b",
        r"^([a-z]) in\b",
        r"(?:个|字母)([A-Za-z])(?![A-Za-z])",
    ):
        found = re.search(pattern, question)
        if found:
            return found.group(1)
    raise AssertionError(f"no letter in {question!r}")


def test_the_original_levels_keep_their_questions_and_ids() -> None:
    """Published letters numbers stay comparable: the phrasings were added beside the original
    levels, which still give exactly the items they gave (digest taken before they were)."""
    import hashlib

    items = generate(200, seed=0) + [letters_item(i, 0, lv) for lv in LEVELS for i in range(20)]
    rows = json.dumps([(i.id, i.question, i.answer, i.level) for i in items])
    digest = hashlib.sha256(rows.encode()).hexdigest()
    assert digest == "bd582a0343de4fef461f8dab53379504582a27f6f853eba67862f5fb89d4601e"
    assert [i.id for i in load_dataset("letters", n=3).items] == [
        "letters-0-0000",
        "letters-0-0001",
        "letters-0-0002",
    ]


def test_phrasings_ask_as_people_do_and_count_a_letter_in_either_case() -> None:
    data = load_dataset("letters:phrasings", n=250)
    assert data.name == "letters-phrasings"
    assert {item.level for item in data.items} == set(PHRASINGS)
    assert all(item.id.startswith("letters-phrasings-0-") for item in data.items)
    seen = set()
    for item in data.items:
        question = item.question
        # The word is one of the generator's, named in the question (in some case).
        words = [w for w in re.findall(r"[A-Za-z]{2,}", question) if w.lower() in WORDS]
        assert words, question
        word = words[-1]  # "letter" is a generator word too; the asked one comes last
        letter = _letter_asked(question)
        assert item.answer == str(word.lower().count(letter.lower())), item
        assert int(item.answer) >= 1  # the letter occurs: these levels are about phrasing
        seen.add(item.level)
        if item.level == "zh":
            assert re.search(r"[\u4e00-\u9fff]", question)
        if item.level == "capital":
            assert letter.isupper()
        if item.level == "mixed":
            assert (word != word.lower() and word != word.capitalize()) or word.isupper()
        if item.level in ("plural", "unquoted"):
            assert '"' not in question and "letter" not in question
    assert seen == set(PHRASINGS)
    # One level alone, by name.
    assert {i.level for i in load_dataset("letters:capital", n=5).items} == {"capital"}


def test_skip_asks_the_items_after_the_first_k(tmp_path: Path) -> None:
    path = tmp_path / "ten.jsonl"
    path.write_text(
        "\n".join(json.dumps({"id": f"q{i}", "question": f"{i}?", "answer": i}) for i in range(10))
    )
    data = load_dataset(str(path), n=3, skip=4)
    assert [item.id for item in data.items] == ["q4", "q5", "q6"]
    assert data.name == "ten-from-5"  # its own output folder, apart from the first items'
    assert [item.id for item in load_dataset(str(path), skip=8).items] == ["q8", "q9"]
    with pytest.raises(DatasetError, match="no items after the first 10"):
        load_dataset(str(path), skip=10)
    with pytest.raises(DatasetError, match="--skip cannot be negative"):
        load_dataset(str(path), skip=-1)
