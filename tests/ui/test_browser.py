"""The real page in headless Chromium: ``thinkchain ui`` started as a user starts it."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from thinkchain.history import HistoryStore
from thinkchain.testing.fake_openai import FakeItem, FakeOpenAIServer, FakeReply, FakeStall

pytestmark = pytest.mark.browser

STRAWBERRY = "How many letters r are in the word strawberry?"
XSS = "<script>alert(1)</script><img src=x onerror=\"document.title='pwned'\">"


def chat_box(page: Any) -> Any:
    box = page.get_by_test_id("stChatInputTextArea")
    box.wait_for(timeout=60_000)
    return box


def send(page: Any, question: str) -> None:
    """Type into the chat box and press Enter, once the box takes questions again."""
    box = chat_box(page)
    page.wait_for_function("el => !el.disabled", arg=box.element_handle(), timeout=60_000)
    box.fill(question)
    box.press("Enter")


def wait_answered(
    page: Any, answers: int, total: str = "Total time", timeout_ms: int = 120_000
) -> None:
    """Wait for ``answers`` answers, and for the page to settle after the last one: its script
    has stopped running and left no element of the live view behind."""
    page.wait_for_function(
        """([total, answers]) =>
            document.querySelector("[data-testid='stApp']")
                ?.getAttribute("data-test-script-state") === "notRunning"
            && document.body.innerText.split(total).length === answers + 1""",
        arg=[total, answers],
        timeout=timeout_ms,
    )
    box = chat_box(page)
    page.wait_for_function("el => !el.disabled", arg=box.element_handle(), timeout=30_000)


def ask_in_browser(page: Any, url: str, question: str, *, compare: bool = False) -> None:
    page.goto(url)
    chat_box(page)
    if compare:
        page.get_by_text("Compare with a direct answer").click()
    send(page, question)
    wait_answered(page, 1)


def open_thought(page: Any, label: str = "Thought for") -> None:
    """Open the last answer's folded thinking, and let it finish unfolding."""
    page.get_by_text(label).last.click()
    page.wait_for_timeout(800)


def test_a_question_is_answered_in_visible_steps(
    start_ui: Any, chromium: Any, tmp_path: Path, artifacts: Path
) -> None:
    db = tmp_path / "history.sqlite3"
    server = start_ui("--demo", "--history", str(db))
    page = chromium.new_page(viewport={"width": 1400, "height": 1800})
    ask_in_browser(page, server.url, STRAWBERRY, compare=True)

    titles = ["Restating the question", "Spelling the word out", "Counting and checking"]
    # The answer shows; its steps are folded into "Thought for N s · 3 steps" until opened.
    assert page.get_by_text("(positions 3, 8 and 9)").is_visible()
    assert not page.get_by_text("Step 1: Restating the question").is_visible()
    assert page.get_by_text(re.compile(r"^Thought for [\d.]+ s · 3 steps$")).is_visible()
    open_thought(page)
    for number, title in enumerate(titles, 1):
        page.get_by_text(f"Step {number}: {title}").wait_for(timeout=5_000)
    assert page.get_by_text("s-t-r-a-w-b-e-r-r-y: the letters are").is_visible()
    # The plain one-shot answer beside the chain gets it wrong, which is the point.
    assert page.get_by_text("Direct answer (no reasoning)").is_visible()
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
        open_thought(page)
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
        send(page, STRAWBERRY)

        # The thinking is open while it happens; the step being written grows in it.
        writing = page.get_by_text("Step 2: Spelling …")
        writing.wait_for(timeout=60_000)
        body = page.locator("[data-testid='stVerticalBlock']", has=writing).last
        first = body.inner_text()
        page.wait_for_timeout(1500)
        later = body.inner_text()
        assert "Reading the word" in later and len(later) > len(first)  # it grows as written
        page.screenshot(path=str(artifacts / "browser-streaming.png"))

        page.get_by_text("Reasoning: step 3").wait_for(timeout=60_000)
        page.get_by_role("button", name="Stop").click()
        page.get_by_text("Stopped.").wait_for(timeout=15_000)
        open_thought(page)
        page.get_by_text("Step 1: Restating").wait_for(timeout=5_000)
        page.screenshot(path=str(artifacts / "browser-stopped.png"))
        assert page.get_by_text(re.compile(r"^Thought for [\d.]+ s · 2 steps$")).is_visible()
        assert page.get_by_text("Step 2: Spelling", exact=True).is_visible()
        assert page.get_by_text("Step 3").count() == 0
        assert page.get_by_role("button", name="Stop").count() == 0
        assert chat_box(page).is_enabled()  # the next question can be asked


def step(title: str, content: str) -> str:
    return json.dumps({"title": title, "content": content, "next_action": "continue"})


def test_a_chinese_conversation_with_a_follow_up(
    start_ui: Any, chromium: Any, tmp_path: Path, artifacts: Path
) -> None:
    fonts = subprocess.run(["fc-list", ":lang=zh"], capture_output=True, text=True).stdout
    if not fonts.strip():
        pytest.fail("no CJK font: `apt-get install fonts-noto-cjk` (make system-deps)")
    db = tmp_path / "history.sqlite3"
    server = start_ui("--demo", "--history", str(db))
    # A browser set to Chinese gets the page in Chinese.
    page = chromium.new_page(viewport={"width": 1400, "height": 1600}, locale="zh-CN")
    page.goto(server.url)
    assert (
        chat_box(page).get_attribute("placeholder") == "例如：strawberry 这个单词里有几个字母 r？"
    )
    send(page, "strawberry 这个单词里有几个字母 r?")
    wait_answered(page, 1, "总用时")
    assert chat_box(page).get_attribute("placeholder") == "继续提问"
    send(page, "那 raspberry 里呢?")
    wait_answered(page, 2, "总用时")
    open_thought(page, "思考了")
    page.get_by_text("第 1 步：Restating the question").last.wait_for(timeout=5_000)
    page.screenshot(path=str(artifacts / "browser-chinese-conversation.png"))

    # Both turns are on the page, each question with its answer, the last one's steps open.
    assert page.get_by_text("strawberry 这个单词里有几个字母 r?").first.is_visible()
    assert page.get_by_text(re.compile(r"^思考了 [\d.]+ s · 共 \d 步$")).count() == 2
    assert page.get_by_text("(positions 3, 8 and 9)").count() == 2
    assert page.get_by_role("button", name="新对话").is_visible()
    with HistoryStore(db) as store:
        [conversation] = store.conversations()
    assert [turn.question for turn in conversation.turns] == [
        "strawberry 这个单词里有几个字母 r?",
        "那 raspberry 里呢?",
    ]


def test_code_steps_run_in_the_sandbox_and_show_under_their_step(
    start_ui: Any, chromium: Any, tmp_path: Path, artifacts: Path
) -> None:
    code = "word = 'strawberry'\nprint(word.count('r'))"
    script: list[FakeItem] = [
        FakeReply(step("Counting with code", f"Count it.\n```python\n{code}\n```")),
        FakeReply(step("A check that fails", "Check.\n```python\nprint(1 / 0)\n```")),
        FakeReply(
            json.dumps(
                {"title": "Done", "content": "The program said 3.", "next_action": "final_answer"}
            )
        ),
        FakeReply("There are 3 letters r in strawberry."),
    ]
    with FakeOpenAIServer(script) as fake:
        server = start_ui(
            "--base-url", fake.url, "--mode", "iterative", "--history", str(tmp_path / "h.sqlite3")
        )
        page = chromium.new_page(viewport={"width": 1400, "height": 1800})
        page.goto(server.url)
        chat_box(page)
        page.get_by_text("Python code steps").click()
        send(page, STRAWBERRY)
        wait_answered(page, 1)
        open_thought(page)
        page.screenshot(path=str(artifacts / "browser-code-steps.png"))

        python = page.locator("code.language-python")
        assert python.count() == 2 and "print(word.count('r'))" in python.first.inner_text()
        assert python.first.locator("span.token").count() > 0  # highlighted, not plain text
        assert page.get_by_text(re.compile(r"^Output · [\d.]+ s$")).is_visible()
        assert page.locator("code.language-text", has_text="3").first.is_visible()
        alert = page.get_by_test_id("stAlertContentError")
        assert re.match(r"Error · [\d.]+ s", alert.inner_text())
        assert "ZeroDivisionError" in alert.inner_text()
        assert page.get_by_text("There are 3 letters r in strawberry.").is_visible()


@pytest.mark.e2e
def test_a_follow_up_on_the_embedded_model_thinks_like_the_first_question(
    start_ui: Any, chromium: Any, tmp_path: Path, artifacts: Path, default_model_path: Path
) -> None:
    """The page's defaults on the real default model (single-pass, code steps on, at least 3
    steps): the follow-up gets titled steps and a program of its own, as its first question
    did, not one bare "Step 1" copied from the earlier answer (issue 27)."""
    db = tmp_path / "history.sqlite3"
    server = start_ui("--model-path", str(default_model_path), "--history", str(db))
    page = chromium.new_page(viewport={"width": 1400, "height": 2400})
    page.goto(server.url)
    chat_box(page)
    send(page, STRAWBERRY)
    wait_answered(page, 1, timeout_ms=600_000)
    send(page, "And how many in the word raspberry?")
    wait_answered(page, 2, timeout_ms=600_000)
    open_thought(page)
    page.screenshot(path=str(artifacts / "browser-follow-up-embedded.png"), full_page=True)

    turn = page.get_by_test_id("stChatMessage").last
    text = turn.inner_text()
    headings = re.findall(r"^Step (\d+)(?:: (.+))?$", text, re.MULTILINE)
    titled = [(n, title) for n, title in headings if title and title != f"Step {n}"]
    assert len(titled) >= 3, text
    assert not re.search(r"Step (\d+): Step \1\b", text)
    # A program of its own ran in the sandbox (whether it counts in the follow-up's word is
    # quality, measured by `thinkchain eval --dataset followups`).
    code = turn.locator("code.language-python")
    assert code.count() >= 1
    assert turn.get_by_text(re.compile(r"^Output · [\d.]+ s$")).first.is_visible()
    with HistoryStore(db) as store:
        [conversation] = store.conversations()
        follow_up = store.get(conversation.turns[1].id)  # a conversation's turns come stepless
    assert follow_up is not None
    assert len(follow_up.steps) >= 3 and any(step.runs for step in follow_up.steps)
