"""The README is the front page: short, the two quick-start commands, the way to the command
a newcomer types next, and a link to every page of the manual in docs/.

A README that grows back into a manual, or that shows `thinkchain ask` to someone whose shell
cannot find it, fails a newcomer; these keep it the page issue 29 asks for.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", README, re.M | re.S)
    assert match, f"the README has no section {title!r}"
    return match.group(1)


def test_the_readme_is_a_front_page():
    assert len(README.splitlines()) <= 200


def test_the_quick_start_is_run_and_test():
    quick = section("Quick start")
    assert re.search(r"^ {4}make run\b", quick, re.M)
    assert re.search(r"^ {4}make test\b", quick, re.M)


def test_it_says_how_to_reach_the_command_before_using_it():
    # `make run` installs into .venv: `thinkchain` is in .venv/bin, not on the PATH.
    quick = section("Quick start")
    assert re.search(r"^ {4}source \.venv/bin/activate$", quick, re.M)
    assert ".venv/bin/thinkchain" in quick
    first_command = re.search(r"^ {4}thinkchain ", README, re.M)
    assert first_command
    assert README.index("source .venv/bin/activate") < first_command.start()


def test_it_links_every_page_of_the_manual():
    pages = {p.name for p in (ROOT / "docs").glob("*.md")}
    linked = set(re.findall(r"\]\(docs/([\w-]+\.md)(?:#[\w-]*)?\)", README))
    assert len(pages) >= 8
    assert sorted(pages - linked) == []


def test_it_names_no_module_of_the_package():
    # The package's layout changes; the README promises only commands and `from thinkchain import`.
    assert re.findall(r"src/|(?:from|import) thinkchain\.\w+|thinkchain/\w+\.py", README) == []
