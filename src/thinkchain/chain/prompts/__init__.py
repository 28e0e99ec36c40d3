"""Prompt texts, written by us, in English and Chinese; loaded from package data."""

from __future__ import annotations

from functools import cache
from importlib import resources

LANGS = ("en", "zh")


@cache
def prompt(lang: str, name: str) -> str:
    """The text of prompt ``name`` in ``lang`` ("en" or "zh"), without trailing whitespace."""
    if lang not in LANGS:
        raise ValueError(f"no prompts in language {lang!r}")
    path = resources.files(__package__).joinpath(lang).joinpath(f"{name}.md")
    return path.read_text(encoding="utf-8").strip()
