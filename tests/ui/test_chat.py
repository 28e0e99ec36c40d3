"""The page as a conversation, in AppTest: follow-ups, history, exports and code steps."""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterator
from typing import ClassVar

import pytest

from thinkchain.chain import events as ev
from thinkchain.chain import loop as chain_module
from thinkchain.chain.background import posed_question
from thinkchain.chain.settings import ChainSettings
from thinkchain.history import ChainRecorder, HistoryStore
from thinkchain.models.backends.scripted import ScriptedBackend, step_json

FIRST = "How many letters r are in strawberry?"
SECOND = "And in raspberry?"
THIRD = "Which of the two has more?"


@pytest.fixture(autouse=True)
def iterative_mode(monkeypatch):
    monkeypatch.setenv("THINKCHAIN_MODE", "iterative")


def answering_backend() -> ScriptedBackend:
    """Three steps about the question asked last, then an answer that names it."""

    def reply(request):  # type: ignore[no-untyped-def]
        contents = [m["content"] for m in request.messages]
        # The question is the end of the one user message (earlier turns come before it).
        at = max(i for i, text in enumerate(contents) if text.endswith((FIRST, SECOND, THIRD)))
        question = next(q for q in (FIRST, SECOND, THIRD) if contents[at].endswith(q))
        if request.purpose == "answer":
            return f"Answer to: {question}"
        if request.purpose == "direct":
            return f"Directly: {question}"
        done = sum(1 for m in request.messages[at:] if m["role"] == "assistant")
        action = "final_answer" if done >= 2 else "continue"
        return step_json(f"Step {done + 1}", f"Thought {done + 1} on {question!r}.", action)

    return ScriptedBackend([reply], repeat_last=True)


def chain_requests(backend: ScriptedBackend, question: str) -> list[list[dict[str, str]]]:
    """The messages of each first step request made for ``question`` (system prompt left out)."""
    return [
        [m for m in r.messages if m["role"] != "system"]
        for r in backend.requests
        if r.purpose == "step" and r.messages[-1]["content"].endswith(question)
    ]


def as_asked(*turns: str) -> list[dict[str, str]]:
    """The one user message a question is asked with: ``turns`` are the earlier questions and
    their answers, in order, then the question (earlier turns as background: background.py)."""
    *earlier, question = turns
    roles = ("user", "assistant")
    context = [{"role": roles[i % 2], "content": text} for i, text in enumerate(earlier)]
    return [{"role": "user", "content": posed_question(context, question, "en")}]


def test_a_follow_up_sees_the_earlier_questions_and_answers(open_page, history_path):
    backend = answering_backend()
    page = open_page(backend).ask(FIRST).wait_until_done()
    assert page.at.chat_input(key="tc.question").placeholder == "Ask a follow-up question"
    page.ask(SECOND, compare=True).wait_until_done()

    assert page.messages() == ["user", "assistant"] * 2
    texts = page.texts()
    assert texts.index(FIRST) < texts.index(f"Answer to: {FIRST}") < texts.index(SECOND)
    assert f"Answer to: {SECOND}" in texts and f"Directly: {SECOND}" in texts
    # Each answer keeps its own steps, folded away.
    assert len(page.thoughts()) == 2 and all(t.endswith(" · 3 steps") for t in page.thoughts())
    # The follow-up was asked after the first question and its answer, not its steps.
    [sent] = chain_requests(backend, SECOND)
    assert sent == as_asked(FIRST, f"Answer to: {FIRST}", SECOND)
    [direct] = [r for r in backend.requests if r.purpose == "direct"]
    assert [m for m in direct.messages if m["role"] != "system"] == sent
    # The history keeps one conversation of two turns.
    with HistoryStore(history_path) as store:
        [conversation] = store.conversations()
    assert [turn.question for turn in conversation.turns] == [FIRST, SECOND]
    [entry] = [b for b in page.at.sidebar.button if FIRST in b.label]
    assert entry.label.endswith(" · 2")


def test_a_conversation_reopened_from_the_history_shows_every_turn_and_continues(
    open_page, history_path
):
    first_visit = open_page(answering_backend()).ask(FIRST).wait_until_done()
    first_visit.ask(SECOND).wait_until_done()
    shown = (first_visit.texts(), first_visit.thoughts())

    backend = answering_backend()
    page = open_page(backend)  # another visit
    [entry] = [b for b in page.at.sidebar.button if FIRST in b.label]
    entry.click()
    page.at.run()
    page.check()
    assert any(c.startswith("From the history") for c in page.captions())
    assert (page.texts(), page.thoughts()) == shown
    assert page.at.chat_input(key="tc.question").placeholder == "Ask a follow-up question"

    page.ask(THIRD).wait_until_done()
    [sent] = chain_requests(backend, THIRD)
    assert sent == as_asked(FIRST, f"Answer to: {FIRST}", SECOND, f"Answer to: {SECOND}", THIRD)
    assert page.messages() == ["user", "assistant"] * 3
    with HistoryStore(history_path) as store:
        [conversation] = store.conversations()
    assert [turn.question for turn in conversation.turns] == [FIRST, SECOND, THIRD]


def test_a_new_conversation_starts_with_nothing_before_it(open_page, history_path):
    backend = answering_backend()
    page = open_page(backend).ask(FIRST).wait_until_done()
    page.button("New conversation").click()
    page.at.run()
    assert page.messages() == [] and page.at.title
    page.ask(SECOND).wait_until_done()

    [sent] = chain_requests(backend, SECOND)
    assert sent == [{"role": "user", "content": SECOND}]
    with HistoryStore(history_path) as store:
        assert [c.question for c in store.conversations()] == [SECOND, FIRST]


class HeldChain:
    """The real chain, held before it starts until the test lets it go (as while a model
    server wakes up): the history has not recorded anything of it yet."""

    real = chain_module.Chain
    release = threading.Event()

    def __init__(self, backend: object, settings: ChainSettings, **overrides: object) -> None:
        self.chain = HeldChain.real(backend, settings, **overrides)
        self.settings = self.chain.settings

    def stream(self, question: str, **kwargs: object) -> Iterator[ev.ChainEvent]:
        cancel = kwargs.get("cancel")
        while not HeldChain.release.wait(0.05) and not getattr(cancel, "cancelled", False):
            pass
        yield from self.chain.stream(question, **kwargs)


def history_entries(page) -> list[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    """The sidebar's conversations as listed: label, button type (secondary, bordered: the one
    on the page; tertiary, plain: the others) and status icon."""
    return [
        (b.label, b.proto.type, b.proto.icon)
        for b in page.at.sidebar.button
        if b.key.startswith("tc.history.")
    ]


def recorded(path) -> list[str]:  # type: ignore[no-untyped-def]
    with HistoryStore(path) as store:
        return [c.question for c in store.conversations()]


def ask_first_of_a_new_conversation_held(open_page, monkeypatch):  # type: ignore[no-untyped-def]
    """A finished conversation (SECOND) in the history, then a new one whose first question
    (FIRST) is asked and held before its chain writes anything."""
    monkeypatch.setattr(chain_module, "Chain", HeldChain)
    HeldChain.release.set()
    page = open_page(answering_backend()).ask(SECOND).wait_until_done()
    page.button("New conversation").click()
    page.at.run()
    assert history_entries(page) == [(SECOND, "tertiary", ":material/check_circle:")]
    HeldChain.release.clear()
    return page.ask(FIRST)


def test_a_new_conversation_is_listed_as_soon_as_its_first_question_is_asked(
    open_page, history_path, monkeypatch
):
    page = ask_first_of_a_new_conversation_held(open_page, monkeypatch)
    assert recorded(history_path) == [SECOND]  # the history has nothing of it yet
    running = (FIRST, "secondary", ":material/hourglass_top:")
    assert history_entries(page) == [running, (SECOND, "tertiary", ":material/check_circle:")]

    HeldChain.release.set()  # once the history has it, it is listed once
    page.wait_for(lambda p: recorded(history_path) == [FIRST, SECOND])
    assert [label for label, *_ in history_entries(page)] == [FIRST, SECOND]
    page.wait_until_done()
    assert history_entries(page)[0] == (FIRST, "secondary", ":material/check_circle:")

    HeldChain.release.clear()  # a follow-up is no new conversation
    page.ask(THIRD)
    assert [label for label, *_ in history_entries(page)] == [FIRST, SECOND]
    HeldChain.release.set()
    page.wait_until_done()
    assert history_entries(page) == [
        (f"{FIRST} · 2", "secondary", ":material/check_circle:"),
        (SECOND, "tertiary", ":material/check_circle:"),
    ]


def test_another_conversation_opens_while_a_new_one_is_listed_and_running(
    open_page, history_path, monkeypatch
):
    page = ask_first_of_a_new_conversation_held(open_page, monkeypatch)
    [entry] = [b for b in page.at.sidebar.button if b.label == SECOND]

    entry.click()  # the running chain is stopped, the other conversation opens
    page.at.run()
    page.check()
    assert not page.chat().running and SECOND in page.texts() and FIRST not in page.texts()
    assert recorded(history_path) == [FIRST, SECOND]  # kept as the stop left it
    assert [entry[:2] for entry in history_entries(page)] == [
        (FIRST, "tertiary"),
        (SECOND, "secondary"),
    ]
    page.button("New conversation").click()
    page.at.run()
    assert page.messages() == [] and [t for _, t, _ in history_entries(page)] == ["tertiary"] * 2


def _downgrade_to_first_schema(path) -> None:  # type: ignore[no-untyped-def]
    """The file as thinkchain wrote it before conversations: no conversation column, version 1."""
    with sqlite3.connect(path) as conn:
        conn.execute("DROP INDEX chains_by_conversation")
        conn.execute("ALTER TABLE chains DROP COLUMN conversation")
        conn.execute("PRAGMA user_version = 1")


def test_a_history_from_before_conversations_opens_and_its_chains_continue(open_page, history_path):
    for question in (FIRST, SECOND):
        recorder = ChainRecorder(history_path, source="ask")
        for event in chain_module.Chain(answering_backend(), ChainSettings()).stream(question):
            recorder.handle(event)
        recorder.close()
    _downgrade_to_first_schema(history_path)

    backend = answering_backend()
    page = open_page(backend)
    entries = [b for b in page.at.sidebar.button if b.label in (FIRST, SECOND)]
    assert [b.label for b in entries] == [SECOND, FIRST]  # each old chain, a conversation
    entries[1].click()
    page.at.run()
    page.check()
    assert page.messages() == ["user", "assistant"]
    page.ask(THIRD).wait_until_done()

    [sent] = chain_requests(backend, THIRD)
    assert sent == as_asked(FIRST, f"Answer to: {FIRST}", THIRD)
    with HistoryStore(history_path) as store:
        assert [[t.question for t in c.turns] for c in store.conversations()] == [
            [FIRST, THIRD],
            [SECOND],
        ]


# -- code steps -------------------------------------------------------------------------------

CODE = "print('strawberry'.count('r'))"
BROKEN = "print(1 / 0)"
COUNTING = f"Let me count with code.\n```python\n{CODE}\n```"
AFTER = "\nIt printed 3."
CHECKING = f"Check another way.\n```python\n{BROKEN}\n```"
# The output holds markup and a fence of its own: it must stay text inside its block.
OUTPUT = "3\n<b>not bold</b>\n```\n"


class CodeChain:
    """Stands in for the chain loop with code steps: the events events.py promises for them
    (the step's text with its block streams, the block runs, the text may go on)."""

    made: ClassVar[list[ChainSettings]] = []
    release = threading.Event()  # the first block runs until the test lets it finish

    def __init__(self, backend: object, settings: ChainSettings, **overrides: object) -> None:
        self.settings = settings
        CodeChain.made.append(settings)

    def stream(self, question: str, **_: object) -> Iterator[ev.ChainEvent]:
        ok = ev.CodeRun(CODE, OUTPUT, "ok", None, 0.04)
        failed = ev.CodeRun(BROKEN, "", "error", "ZeroDivisionError: division by zero", 0.01)
        first = ev.Step(
            1, "Counting", COUNTING + AFTER, "continue", 0.5, 0.1, ev.Usage(9, 20), runs=(ok,)
        )
        second = ev.Step(
            2, "Checking", CHECKING, "final_answer", 0.3, 0.1, ev.Usage(9, 10), runs=(failed,)
        )
        answer = ev.FinalAnswer("There are 3.", 0.1, 0.05, ev.Usage(5, 4))
        yield ev.ChainStarted(question, "en", "scripted", "iterative")
        yield ev.StepStarted(1)
        yield ev.StepDelta(1, "title", "Counting")
        yield ev.StepDelta(1, "content", COUNTING)
        yield ev.CodeStarted(1, CODE)
        CodeChain.release.wait(30)
        yield ev.CodeDone(1, ok)
        yield ev.StepDelta(1, "content", AFTER)
        yield ev.StepDone(first)
        yield ev.StepStarted(2)
        yield ev.StepDelta(2, "title", "Checking")
        yield ev.StepDelta(2, "content", CHECKING)
        yield ev.CodeStarted(2, BROKEN)
        yield ev.CodeDone(2, failed)
        yield ev.StepDone(second)
        yield ev.AnswerStarted()
        yield ev.AnswerDelta(answer.text)
        yield ev.AnswerDone(answer)
        result = ev.ChainResult(
            question, "en", [first, second], answer, seconds=1.0, model="scripted"
        )
        yield ev.ChainCompleted(result)


def code_shown(page) -> list[str]:  # type: ignore[no-untyped-def]
    """The code blocks, outputs, notes and errors of the steps, in order, as shown."""
    shown = []
    for element in page.at.main:
        code = element.type == "markdown" and "```" in element.value
        note = element.type in ("caption", "error") and element.value.startswith(
            ("⏳", "Output", "Error")
        )
        if code or note:
            shown.append(element.value)
    return shown


def test_code_steps_show_the_code_running_then_its_output(open_page, history_path, monkeypatch):
    monkeypatch.setattr(chain_module, "Chain", CodeChain)
    CodeChain.made.clear()
    CodeChain.release.clear()
    page = open_page(answering_backend())
    page.at.sidebar.toggle(key="tc.tools").set_value(True)
    page.ask(FIRST)
    assert CodeChain.made[-1].tools == ("python",)

    # The block shows as highlighted code, and under it a note while it runs.
    page.wait_for(lambda p: "⏳ Running the code…" in code_shown(p))
    assert code_shown(page) == [COUNTING, "⏳ Running the code…"]
    CodeChain.release.set()
    page.wait_until_done()

    error = "Error · 0.01 s\n\n```text\nZeroDivisionError: division by zero\n```"
    shown = code_shown(page)
    assert shown == [
        COUNTING,
        "Output · 0.04 s",
        f"````text\n{OUTPUT.rstrip()}\n````",  # a longer fence: the output's own stays text
        CHECKING,
        error,
    ]
    assert [e.value for e in page.at.main.error] == [error]
    assert all(not m.proto.allow_html for m in page.at.main.markdown)
    assert "It printed 3." in page.texts()  # the step went on after its output
    [thought] = page.thoughts()
    assert thought.endswith(" · 2 steps")

    fresh = open_page(None)  # reopened from the history: the same code, outputs and errors
    [entry] = [b for b in fresh.at.sidebar.button if FIRST in b.label]
    entry.click()
    fresh.at.run()
    assert code_shown(fresh) == shown


def test_the_code_steps_switch_speaks_chinese(open_page, history_path):
    page = open_page(None)
    page.at.sidebar.radio(key="tc.ui_lang").set_value("zh")
    page.at.run()
    assert page.at.sidebar.toggle(key="tc.tools").label == "Python 代码步骤"


def test_a_python_block_runs_in_the_sandbox_and_its_output_shows(open_page, history_path):
    backend = ScriptedBackend(
        [
            step_json("Counting with code", f"Let me count.\n```python\n{CODE}\n```"),
            step_json("Reading the output", "It printed 3."),
            step_json("Checking", "s-t-r-a-w-b-e-r-r-y has r at 3, 8 and 9.", "final_answer"),
            "There are 3.",
        ]
    )
    page = open_page(backend)
    page.at.sidebar.toggle(key="tc.tools").set_value(True)
    page.ask(FIRST).wait_until_done(timeout=120)

    shown = code_shown(page)
    assert shown[0] == f"Let me count.\n```python\n{CODE}\n```"
    assert re.fullmatch(r"Output · [\d.]+ s", shown[1]) and shown[2] == "```text\n3\n```"
    assert "There are 3." in page.texts()
