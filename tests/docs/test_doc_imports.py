"""Every `from thinkchain… import …` the README and docs/ show imports what it names.

The package is reorganised from time to time; a manual that shows an import which no longer
works is the first thing a user copies and the first thing that fails for them.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
IMPORT = re.compile(r"from (thinkchain(?:\.\w+)*) import (\([^)]*\)|[\w, ]+)")


def shown_imports() -> list[tuple[str, str, str]]:
    """(page, module, name) for each name a page imports from thinkchain."""
    found = []
    for page in PAGES:
        for module, names in IMPORT.findall(page.read_text(encoding="utf-8")):
            for name in re.findall(r"\w+", names):
                found.append((page.name, module, name))
    return found


def test_the_docs_show_imports():
    modules = {module for _, module, _ in shown_imports()}
    assert "thinkchain" in modules and len(modules) >= 3


@pytest.mark.parametrize(("page", "module", "name"), shown_imports())
def test_every_shown_import_works(page: str, module: str, name: str):
    assert hasattr(importlib.import_module(module), name), f"{page}: from {module} import {name}"
