"""Chinese texts use full-width punctuation: an ASCII comma, colon or bracket next to a Chinese
character reads as a typo to a Chinese reader."""

from __future__ import annotations

import re
from string import Formatter
from typing import get_args

import pytest

from thinkchain.chain.labels import LabelName, label
from thinkchain.history.export import _LABELS as EXPORT_LABELS
from thinkchain.ui.texts import ZH

# Chinese characters, Chinese punctuation ("。", "、") and full-width forms ("：", "（")
_CJK = r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]"
# next to one of those, or ending the text ("字母 r?")
_ASCII_NEXT_TO_CJK = re.compile(rf"{_CJK}[,:;?!()]|[,:;?!()](?:{_CJK}|$)")

ZH_TEXTS = (
    [(f"ui.texts.ZH[{key!r}]", text) for key, text in ZH.items()]
    + [(f"labels {name!r}", label("zh", name)) for name in get_args(LabelName)]
    + [(f"export {key!r}", text) for key, text in EXPORT_LABELS["zh"].items()]
)


def _filled(text: str) -> str:
    """The text with each format field standing in as a Chinese character, so that
    "推理链 {index}:{answer}" is caught too; ASCII inside a field ("{length:,}") is not text."""
    return "".join(
        literal + ("字" if field is not None else "")
        for literal, field, _, _ in Formatter().parse(text)
    )


@pytest.mark.parametrize(("where", "text"), ZH_TEXTS, ids=[where for where, _ in ZH_TEXTS])
def test_chinese_texts_use_full_width_punctuation(where: str, text: str) -> None:
    assert not _ASCII_NEXT_TO_CJK.findall(_filled(text)), f"{where}: {text!r}"


def test_the_guard_catches_half_width_punctuation() -> None:
    for bad in ("第 {index} 步:{title}", "推理链 {index}:{answer}", "字母 r?", "v1(vLLM)。"):
        assert _ASCII_NEXT_TO_CJK.search(_filled(bad)), bad
    for good in (
        "问题长度为 {length:,} 个字符",
        "例如 http://localhost:8000/v1（vLLM、llama.cpp）。",
    ):
        assert not _ASCII_NEXT_TO_CJK.search(_filled(good)), good
