"""Where evaluation items come from: a JSONL file, the letters generator, or GSM8K online.

``--dataset`` takes a path (``{"id", "question", "answer"}`` per line, optionally ``"before"``:
the questions asked first in the same conversation), ``letters`` (every level) or
``letters:LEVEL``, ``followups`` (follow-up questions after a first one) or
``followups:standalone``, or ``gsm8k`` / ``gsm8k:train`` through the Hugging Face ``datasets``
library.  Every failure a user can cause is a :class:`DatasetError` with one
sentence that says what to do.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from thinkchain.eval import followups, letters
from thinkchain.eval.items import Item


class DatasetError(ValueError):
    """The dataset cannot be read; the message is meant for the user as it is."""


@dataclass(frozen=True)
class Dataset:
    name: str  # short, for titles and the default output folder: "gsm8k_train_500", "letters"
    source: str  # what was asked for, as written: a path, "letters", "gsm8k"
    items: list[Item]


def load_dataset(spec: str, *, n: int | None = None, seed: int = 0, skip: int = 0) -> Dataset:
    """The first ``n`` items (all when None) of the dataset named by ``spec``, after leaving
    out its first ``skip`` (items 201-400 of a file: ``skip=200, n=200``)."""
    if n is not None and n < 1:
        raise DatasetError("--n must be at least 1")
    if skip < 0:
        raise DatasetError("--skip cannot be negative")
    data = _load(spec, n=None if n is None else n + skip, seed=seed)
    if not skip:
        return data
    items = data.items[skip:]
    if not items:
        raise DatasetError(f"{spec} has no items after the first {skip}")
    return Dataset(f"{data.name}-from-{skip + 1}", data.source, items)


def _load(spec: str, *, n: int | None, seed: int) -> Dataset:
    kind, _, option = spec.partition(":")
    if kind == "letters" and not Path(spec).exists():
        levels = (
            letters.PHRASINGS if option == "phrasings" else (option,) if option else letters.LEVELS
        )
        try:
            items = letters.generate(200 if n is None else n, seed=seed, levels=levels)
        except ValueError as err:
            raise DatasetError(str(err)) from None
        return Dataset(f"letters-{option}" if option else "letters", spec, items)
    if kind == "followups" and not Path(spec).exists():
        try:
            items = followups.items(option or "conversation", n)
        except ValueError as err:
            raise DatasetError(str(err)) from None
        return Dataset(f"followups-{option}" if option else "followups", spec, items)
    if kind == "gsm8k" and not Path(spec).exists():
        return Dataset(f"gsm8k-{option or 'test'}", spec, load_gsm8k(option or "test", n))
    path = Path(spec).expanduser()
    if not path.is_file():
        raise DatasetError(
            f"no such dataset: {spec} "
            "(give a .jsonl file, `letters`, `letters:LEVEL`, `followups` or `gsm8k`)"
        )
    return Dataset(path.stem, spec, read_jsonl(path, n))


def read_jsonl(path: Path, n: int | None = None) -> list[Item]:
    """Items of a ``{"id", "question", "answer"}`` JSONL file, checked line by line."""
    items: list[Item] = []
    seen: set[str] = set()
    try:
        # JSON Lines are separated by "\n" alone: str.splitlines() would also break inside a
        # string at U+2028 or U+0085, which JSON allows unescaped (the shared GSM8K file has one).
        lines = path.read_text(encoding="utf-8").split("\n")
    except (OSError, UnicodeDecodeError) as err:
        raise DatasetError(f"cannot read {path}: {err}") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}, line {number}"
        try:
            row = json.loads(line)
        except ValueError:
            raise DatasetError(f"{where}: not a JSON object") from None
        if not isinstance(row, dict):
            raise DatasetError(f"{where}: not a JSON object")
        missing = [key for key in ("question", "answer") if row.get(key) in (None, "")]
        if missing:
            raise DatasetError(f"{where}: no {' or '.join(missing)}")
        item_id = str(row.get("id", f"line-{number}"))
        if item_id in seen:
            # Results are matched to items by id: two items with one id would share a result.
            raise DatasetError(f"{where}: the id {item_id!r} was used before")
        seen.add(item_id)
        before = row.get("before") or []
        if not isinstance(before, list) or not all(isinstance(q, str) and q for q in before):
            raise DatasetError(f"{where}: before must be a list of earlier questions")
        items.append(
            Item(
                item_id,
                str(row["question"]),
                str(row["answer"]),
                row.get("level") or None,
                before=tuple(before),
            )
        )
        if n is not None and len(items) >= n:
            break
    if not items:
        raise DatasetError(f"{path} holds no items")
    return items


def load_gsm8k(split: str = "test", n: int | None = None) -> list[Item]:
    """GSM8K from the Hugging Face hub (``openai/gsm8k``, config ``main``)."""
    if split not in ("test", "train"):
        raise DatasetError(f"gsm8k has the splits test and train, not {split!r}")
    try:
        import datasets as hf_datasets  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        raise DatasetError(
            "--dataset gsm8k needs the Hugging Face `datasets` library "
            "(pip install 'thinkchain[gsm8k]'); "
            "or pass a local file, e.g. --dataset ../shared/datasets/gsm8k_train_500.jsonl"
        ) from None
    try:
        rows = hf_datasets.load_dataset("openai/gsm8k", "main", split=split)
    except Exception as err:  # offline, hub down, renamed: the library raises many kinds
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DatasetError(
            f"could not load gsm8k from the Hugging Face hub (offline?): {reason[:200]}; "
            "pass a local file instead, e.g. --dataset ../shared/datasets/gsm8k_train_500.jsonl"
        ) from None
    items = []
    for index, row in enumerate(rows):
        if n is not None and index >= n:
            break
        # GSM8K answers are worked solutions ending in "#### 42"; keep only the number.
        answer = str(row["answer"]).rsplit("####", 1)[-1].strip().replace(",", "")
        items.append(Item(f"gsm8k-{split}-{index}", str(row["question"]), answer))
    return items
