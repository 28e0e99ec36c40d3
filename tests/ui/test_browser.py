"""The real page in headless Chromium: ``thinkchain ui`` started as a user starts it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from thinkchain.history import HistoryStore
from thinkchain.testing.fake_openai import FakeItem, FakeOpenAIServer, FakeReply, FakeStall

pytestmark = pytest.mark.browser

STRAWBERRY = "How many letters r are in the word strawberry?"
XSS = "<script>alert(1)</script><img src=x onerror=\"document.title='pwned'\">"


def ask_in_browser(page: Any, url: str, question: str, *, compare: bool = False) -> None:
    page.goto(url)
    box = page.get_by_label("Your question")
    box.wait_for(timeout=60_000)
    box.fill(question)
    if compare:
        page.get_by_text("Compare with a direct answer").click()
    page.get_by_role("button", name="Think it through").click()
    page.get_by_text("Total thinking time").wait_for(timeout=120_000)


def test_a_question_is_answered_in_visible_steps(
    start_ui: Any, chromium: Any, tmp_path: Path, artifacts: Path
) -> None:
    db = tmp_path / "history.sqlite3"
    server = start_ui("--demo", "--history", str(db))
    page = chromium.new_page(viewport={"width": 1400, "height": 1800})
    ask_in_browser(page, server.url, STRAWBERRY, compare=True)

    titles = ["Restating the question", "Spelling the word out", "Counting and checking"]
    for number, title in enumerate(titles, 1):
        assert page.get_by_text(f"Step {number}: {title}").is_visible()
    assert page.get_by_text("s-t-r-a-w-b-e-r-r-y: the letters are").is_visible()
    assert page.get_by_role("heading", name="Final answer").is_visible()
    assert page.get_by_text("(positions 3, 8 and 9)").is_visible()
    # The plain one-shot answer beside the chain gets it wrong, which is the point.
    assert page.get_by_role("heading", name="Direct answer (no reasoning)").is_visible()
    assert page.get_by_text("There are 2 letters r in strawberry.").is_visible()
    page.screenshot(path=str(artifacts / "browser-strawberry-demo.png"))

    with HistoryStore(db) as store:
        [record] = store.list()
        saved = store.get(record.id)
    assert saved is not None and saved.status == "completed"
    assert [step.title for step in saved.steps] == titles
    assert saved.paired is not None and "2 letters" in saved.paired.answer.text  # type: ignore[union-attr]


def _xss_responder(body: dict[str, Any]) -> FakeItem:
    """A server whose model writes markup that would run if the page rendered HTML."""
    if not body.get("response_format") and "guided_json" not in body:
        return f"The answer is 3. {XSS}"
    done = sum(1 for m in body.get("messages", []) if m.get("role") == "assistant")
    steps = [
        ("Markup <b>in</b> a title", XSS),
        ("Counting", "s-t-r-a-w-b-e-r-r-y has r at positions 3, 8 and 9; it costs $5 & $6."),
        ("Checking", "Counted twice: 3."),
    ]
    title, content = steps[min(done, 2)]
    action = "final_answer" if done >= 2 else "continue"
    return json.dumps({"title": title, "content": content, "next_action": action})


def test_model_markup_shows_as_text_and_runs_nothing(
    start_ui: Any, chromium: Any, tmp_path: Path, artifacts: Path
) -> None:
    with FakeOpenAIServer(responder=_xss_responder) as fake:
        server = start_ui(
            "--base-url", fake.url, "--mode", "iterative", "--history", str(tmp_path / "h.sqlite3")
        )
        page = chromium.new_page(viewport={"width": 1400, "height": 1800})
        dialogs: list[str] = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        ask_in_browser(page, server.url, STRAWBERRY)
        page.wait_for_timeout(500)  # give any injected handler the chance to fire
        page.screenshot(path=str(artifacts / "browser-xss.png"))

        assert dialogs == []
        assert page.title() == "thinkchain"
        # The markup is on the page as the characters the model wrote...
        assert page.get_by_text("<script>alert(1)</script>", exact=False).count() >= 1
        assert page.get_by_text("Step 1: Markup <b>in</b> a title").is_visible()
        assert page.get_by_text("it costs $5 & $6.").is_visible()
        # ...and not as elements.
        assert page.locator("img[src='x']").count() == 0
        assert page.locator("b", has_text="in").count() == 0
        assert page.locator("script", has_text="alert(1)").count() == 0


def test_steps_stream_in_and_stop_keeps_the_finished_ones(
    start_ui: Any, chromium: Any, tmp_path: Path, artifacts: Path
) -> None:
    slow = "Reading the word letter by letter: " + " s t r a w b e r r y" * 3
    script: list[FakeItem] = [
        FakeReply(step("Restating", "Count the letter r in strawberry.")),
        FakeReply(step("Spelling", slow), delay=0.15),  # about five seconds, word by word
        FakeStall(seconds=120),  # step 3 never comes: the user stops the chain meanwhile
    ]
    with FakeOpenAIServer(script) as fake:
        server = start_ui(
            "--base-url", fake.url, "--mode", "iterative", "--history", str(tmp_path / "h.sqlite3")
        )
        page = chromium.new_page(viewport={"width": 1400, "height": 1800})
        page.goto(server.url)
        page.get_by_label("Your question").fill(STRAWBERRY)
        page.get_by_role("button", name="Think it through").click()

        writing = page.get_by_text("Step 2: Spelling …")
        writing.wait_for(timeout=60_000)
        body = page.locator("[data-testid='stExpander']", has=writing)
        first = body.inner_text()
        page.wait_for_timeout(1500)
        later = body.inner_text()
        assert "Reading the word" in later and len(later) > len(first)  # it grows as written

        page.get_by_text("Reasoning: step 3").wait_for(timeout=60_000)
        page.get_by_role("button", name="Stop").click()
        page.get_by_text("Stopped.").wait_for(timeout=15_000)
        page.screenshot(path=str(artifacts / "browser-stopped.png"))
        assert page.get_by_text("Step 1: Restating").is_visible()
        assert page.get_by_text("Step 2: Spelling", exact=True).is_visible()
        assert page.get_by_text("Step 3").count() == 0
        assert page.get_by_role("heading", name="Final answer").count() == 0
        assert page.get_by_role("button", name="Stop").count() == 0


def step(title: str, content: str) -> str:
    return json.dumps({"title": title, "content": content, "next_action": "continue"})
