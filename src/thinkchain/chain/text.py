"""Small text rules shared by several front ends: safe to encode, safe to fence."""

from __future__ import annotations

import re

_BACKTICKS = re.compile(r"`+")


def replace_lone_surrogates(text: str) -> str:
    """``text`` with every lone surrogate (e.g. from a ``"\\ud800"`` escape) turned into U+FFFD."""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def fenced(text: str, info: str = "") -> str:
    """``text`` as a fenced code block that no backticks inside it can close early."""
    longest = max((len(run) for run in _BACKTICKS.findall(text)), default=0)
    fence = "`" * max(3, longest + 1)
    body = text.rstrip("\n")
    return f"{fence}{info}\n{body}\n{fence}"


def format_seconds(seconds: float) -> str:
    """A duration as every front end shows it: "3.25 s", "2 min 5 s"."""
    return f"{seconds:.2f} s" if seconds < 60 else f"{int(seconds // 60)} min {seconds % 60:.0f} s"
