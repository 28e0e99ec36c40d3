"""Text as it arrives from outside (JSON escapes, undecodable bytes), made safe to encode."""

from __future__ import annotations


def replace_lone_surrogates(text: str) -> str:
    """``text`` with every lone surrogate (e.g. from a ``"\\ud800"`` escape) turned into U+FFFD."""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
