"""Pick the prompt language for a question."""

from __future__ import annotations

import re

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ffff]")
_LATIN_WORD = re.compile(r"[A-Za-z]+")


def detect_lang(text: str) -> str:
    """Return "zh" when the question is mostly Chinese, else "en".

    A CJK character carries about as much as a Latin word, so the two are compared one to one:
    "strawberry中有多少个字母r?" has 7 CJK characters and 2 Latin words and is Chinese.
    """
    cjk = len(_CJK.findall(text))
    words = len(_LATIN_WORD.findall(text))
    return "zh" if cjk > words else "en"


def resolve_lang(lang: str, question: str) -> str:
    if lang == "auto":
        return detect_lang(question)
    if lang not in ("zh", "en"):
        raise ValueError(f"unknown language {lang!r}: use auto, zh or en")
    return lang
