"""The web page in Streamlit's AppTest, driven by scripted models: what a user sees and does.

The conversation itself (follow-ups, reopening, code steps) is in test_chat.py.
"""

from __future__ import annotations

import socket
import sqlite3

import pytest

from thinkchain.chain.backend import BackendError
from thinkchain.chain.settings import MODES, ChainSettings
from thinkchain.history import HistoryStore
from thinkchain.models.backends.scripted import (
    Fault,
    Reply,
    ScriptedBackend,
    demo_backend,
    step_json,
)

STRAWBERRY = "How many letters r are in the word strawberry?"
DEMO_TITLES = [
    "Step 1: Restating the question",
    "Step 2: Spelling the word out",
    "Step 3: Counting and checking",
]


def test_steps_appear_in_order_then_the_answer_and_the_total_time(open_page, history_path):
    page = open_page(demo_backend()).ask(STRAWBERRY).wait_until_done()

    assert page.messages() == ["user", "assistant"]
    assert page.step_labels() == DEMO_TITLES
    texts = page.texts()
    spelled = next(i for i, t in enumerate(texts) if t.startswith("s-t-r-a-w-b-e-r-r-y"))
    answer = next(i for i, t in enumerate(texts) if "(positions 3, 8 and 9)" in t)
    assert spelled < answer
    # The steps are folded away under the answer's "Thought for" section, and open to all of them.
    [thought] = page.at.main.status
    assert thought.label.startswith("Thought for ") and thought.label.endswith(" s · 3 steps")
    assert not thought.proto.expanded
    assert [m.value.strip("*") for m in thought.markdown if m.value.startswith("**")] == DEMO_TITLES
    assert page.answers_shown() == 1
    # Each step shows its own time and tokens.
    assert sum(1 for c in page.captions() if c.endswith(" tokens") and " s · " in c) == 3
    assert [b.label for b in page.at.main.get("download_button")] == [
        "Download as Markdown",
        "Download as JSON",
    ]


@pytest.fixture(autouse=True)
def iterative_mode(monkeypatch):
    # The scripted models here write the seed's JSON steps, one per call: the iterative mode.
    monkeypatch.setenv("THINKCHAIN_MODE", "iterative")


def test_the_step_being_written_grows_on_the_page(open_page, history_path):
    words = "one two three four five six seven eight nine ten eleven twelve"
    backend = ScriptedBackend(
        [
            step_json("Slowly", words),
            step_json("Done", "Nothing more.", "final_answer"),
            "Twelve words.",
        ]
    )
    backend.script[0] = Reply(str(backend.script[0]), delay=0.15)
    page = open_page(backend)
    page.at.sidebar.number_input(key="tc.min_steps").set_value(1)
    page.ask("Count to twelve")

    def partial_content(p) -> str:
        texts = [*p.texts(), ""]
        if "**Step 1: Slowly …**" not in texts:
            return ""
        return texts[texts.index("**Step 1: Slowly …**") + 1].removesuffix(" ▌")

    seen = partial_content(page.wait_for(lambda p: "three" in partial_content(p)))
    assert words.startswith(seen) and seen != words  # part of the step, before it is done
    page.wait_until_done()
    assert page.step_labels() == ["Step 1: Slowly", "Step 2: Done"]


def test_a_failure_keeps_the_steps_already_shown(open_page, history_path):
    backend = ScriptedBackend(
        [
            step_json("First", "The first step."),
            step_json("Second", "The second step."),
            Fault(BackendError("the GPU caught fire", server="http://gpu:8000/v1")),
        ]
    )
    page = open_page(backend).ask(STRAWBERRY).wait_until_done()

    assert page.step_labels() == ["Step 1: First", "Step 2: Second"]
    [error] = page.errors()
    assert "The model server failed" in error and "the GPU caught fire" in error
    assert page.runs()[0].snapshot().answer is None
    with HistoryStore(history_path) as store:
        [record] = store.list()
    assert record.status == "backend_error" and record.step_count == 2


def test_an_invalid_step_is_retried_then_reported(open_page, history_path):
    backend = ScriptedBackend(
        [step_json("Fine", "A good step."), "not json", "still not json", "nope"]
    )
    page = open_page(backend).ask(STRAWBERRY).wait_until_done()

    assert page.step_labels() == ["Step 1: Fine"]
    [error] = page.errors()
    assert error.startswith("A step could not be generated") and "3 attempt" in error
    # Attempts 1 and 2 were thrown away and retried; the third failed the step.
    assert any(c.endswith("2 discarded attempts") for c in page.captions())


def test_a_token_budget_ends_the_chain_with_its_steps(open_page, history_path):
    page = open_page(demo_backend())
    page.at.sidebar.number_input(key="tc.budget_t").set_value(30)
    page.ask(STRAWBERRY).wait_until_done()

    assert page.step_labels() == DEMO_TITLES[:1]
    [error] = page.errors()
    assert error.startswith("The token budget is spent")


def test_a_server_that_is_down_is_reported_inline(open_page, history_path):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    page = open_page(None)
    page.at.sidebar.radio(key="tc.backend").set_value("server")
    page.at.run()
    page.at.sidebar.text_input(key="tc.url").input(f"http://127.0.0.1:{port}/v1")
    page.ask(STRAWBERRY).wait_until_done(timeout=120)

    [error] = page.errors()
    assert error.startswith("The model server failed") and f"127.0.0.1:{port}" in error
    assert page.step_labels() == []


def test_stop_ends_the_chain_at_once_and_keeps_finished_steps(open_page, history_path):
    backend = ScriptedBackend(
        [
            step_json("First", "The first step."),
            step_json("Second", "The second step."),
            Reply(step_json("Never", "This step is never finished."), first_delay=120),
        ]
    )
    page = open_page(backend).ask(STRAWBERRY)
    page.wait_for(lambda p: "Step 2: Second" in p.step_labels())
    assert [b.label for b in page.at.main.button if b.label == "Stop"] == ["Stop"]

    page.button("Stop").click()
    page.at.run()
    page.check()

    [run] = page.runs()
    assert run.done  # cancelled: the step that would take two minutes is not waited for
    assert page.step_labels() == ["Step 1: First", "Step 2: Second"]
    assert any(w.startswith("Stopped.") for w in page.warnings())
    assert run.snapshot().answer is None
    assert not [b for b in page.at.main.button if b.label == "Stop"]
    assert not page.at.chat_input(key="tc.question").proto.disabled  # ready for the next one
    with HistoryStore(history_path) as store:
        [record] = store.list()
        saved = store.get(record.id)
    assert saved is not None and saved.status == "cancelled"
    assert [s.title for s in saved.steps] == ["First", "Second"]


def test_a_chain_from_the_history_reopens_as_it_was(open_page, history_path):
    page = open_page(demo_backend()).ask(STRAWBERRY, compare=True).wait_until_done()
    live = (page.step_labels(), page.texts(), page.thoughts())

    fresh = open_page(None)  # another visit: nothing running, only the history
    [entry] = [b for b in fresh.at.sidebar.button if STRAWBERRY in b.label]
    entry.click()
    fresh.at.run()
    fresh.check()

    assert any(c.startswith("From the history") for c in fresh.captions())
    assert (fresh.step_labels(), fresh.texts(), fresh.thoughts()) == live
    assert "**Direct answer (no reasoning)**" in fresh.texts()
    assert any("There are 2 letters r" in t for t in fresh.texts())
    fresh.button("New conversation").click()
    fresh.at.run()
    assert fresh.step_labels() == [] and fresh.messages() == []


@pytest.mark.parametrize("question", ["", "   \n\t  "])
def test_an_empty_question_is_refused_and_nothing_runs(open_page, history_path, question):
    backend = demo_backend()
    page = open_page(backend).ask(question)

    assert page.errors() == ["Please type a question first."]
    assert backend.requests == [] and page.runs() == []
    assert page.step_labels() == []


def test_a_huge_question_is_refused_and_nothing_runs(open_page, history_path):
    backend = demo_backend()
    limit = ChainSettings().max_question_chars
    page = open_page(backend).ask("why? " * (limit // 5 + 1))

    [error] = page.errors()
    assert error.startswith("The question is") and f"{limit:,}" in error
    assert backend.requests == [] and page.runs() == []
    with HistoryStore(history_path) as store:
        assert store.list() == []


def test_a_locked_history_is_reported_and_the_chain_still_shows(
    open_page, history_path, monkeypatch
):
    HistoryStore(history_path).close()  # an existing database, in WAL mode
    monkeypatch.setenv("THINKCHAIN_HISTORY_TIMEOUT", "0.3")
    other = sqlite3.connect(history_path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process is in the middle of a long write
    try:
        page = open_page(demo_backend()).ask(STRAWBERRY).wait_until_done()
    finally:
        other.execute("ROLLBACK")
        other.close()

    assert page.step_labels() == DEMO_TITLES
    assert page.answers_shown() == 1
    [warning] = page.warnings()
    assert "could not be saved" in warning and "locked" in warning


def test_an_unusable_history_location_is_reported_and_the_chain_still_shows(
    open_page, tmp_path, monkeypatch
):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the history folder should be")
    monkeypatch.setenv("THINKCHAIN_HISTORY", str(blocker / "history.sqlite3"))
    page = open_page(demo_backend())
    assert any("history is not available" in w.value for w in page.at.sidebar.warning)

    page.ask(STRAWBERRY).wait_until_done()
    assert page.step_labels() == DEMO_TITLES
    assert any("could not be saved" in w for w in page.warnings())


def test_the_page_speaks_chinese(open_page, history_path):
    page = open_page(demo_backend())
    page.at.sidebar.radio(key="tc.ui_lang").set_value("zh")
    page.at.run()
    assert page.at.title[0].value == "thinkchain：看得见每一步的推理"
    assert page.at.chat_input(key="tc.question").placeholder.startswith("例如")

    page.ask("strawberry 这个单词里有几个字母 r?").wait_until_done()
    headings = [m.value.strip("*") for m in page.at.main.markdown if m.value.startswith("**第")]
    assert headings == [
        "第 1 步：Restating the question",
        "第 2 步：Spelling the word out",
        "第 3 步：Counting and checking",
    ]
    assert page.thoughts()[0].startswith("思考了 ") and page.thoughts()[0].endswith(" · 共 3 步")
    assert any(c.startswith("总用时：") for c in page.captions())
    assert page.at.chat_input(key="tc.question").placeholder == "继续提问"


def test_the_mode_selector_offers_every_chain_mode(open_page, history_path):
    page = open_page(demo_backend())
    assert len(page.at.sidebar.selectbox(key="tc.mode").options) == len(MODES)

    page.at.sidebar.selectbox(key="tc.mode").set_value("direct")
    page.ask(STRAWBERRY).wait_until_done()
    assert page.step_labels() == []
    assert any("There are 2 letters r" in t for t in page.texts())


def test_the_page_starts_on_the_default_mode_or_the_one_it_was_launched_with(
    open_page, history_path, monkeypatch
):
    titles = [
        "Step 1: Restating the question",
        "Step 2: Spelling the word out",
        "Step 3: Counting and checking",
    ]
    monkeypatch.delenv("THINKCHAIN_MODE")
    page = open_page(demo_backend())
    assert page.at.sidebar.selectbox(key="tc.mode").value == "single-pass"
    # The embedded model starts with code steps on: the demo then counts with a program.
    assert page.at.sidebar.toggle(key="tc.tools").value is True
    page.ask(STRAWBERRY).wait_until_done()
    assert page.step_labels() == [  # its reply, split into titled steps around the code run
        "Step 1: Count the letters with a program",
        "Step 2: Read the output",
        "Step 3: Check by position",
    ]

    monkeypatch.setenv("THINKCHAIN_MODE", "iterative")  # what `thinkchain ui --mode iterative` sets
    page = open_page(demo_backend())
    assert page.at.sidebar.selectbox(key="tc.mode").value == "iterative"
    page.ask(STRAWBERRY).wait_until_done()
    assert page.step_labels() == titles


def test_model_text_is_never_rendered_as_html(open_page, history_path):
    xss = "<script>alert(1)</script><img src=x onerror=\"document.title='pwned'\">"
    backend = ScriptedBackend(
        [
            step_json("<b>bold</b>", xss),
            step_json("Two", "two"),
            step_json("Three", "three", "final_answer"),
            xss,
        ]
    )
    page = open_page(backend).ask(STRAWBERRY).wait_until_done()

    model_text = [m for m in page.at.main.markdown if "script" in m.value]
    assert len(model_text) == 2  # the step and the answer
    assert all(not m.proto.allow_html for m in page.at.main.markdown)
    assert all("<" not in m.value for m in model_text)
    assert page.step_labels()[0] == "Step 1: &lt;b>bold&lt;/b>"


def test_a_model_is_made_once_per_process_not_on_every_rerun(open_page, history_path, monkeypatch):
    from thinkchain.models.backends import factory
    from thinkchain.testing.fake_openai import FakeOpenAIServer

    made = []
    real = factory.make_backend
    monkeypatch.setattr(factory, "make_backend", lambda c: made.append(c) or real(c))
    with FakeOpenAIServer() as fake:
        for _ in range(2):  # two visits, two questions each
            page = open_page(None)
            page.at.sidebar.radio(key="tc.backend").set_value("server")
            page.at.run()
            page.at.sidebar.text_input(key="tc.url").input(fake.url)
            for number, question in enumerate(("What is 6 * 7?", "And 7 * 6?"), start=1):
                page.ask(question).wait_until_done()
                assert page.answers_shown() == number
    assert len(made) == 1


def test_a_chain_cut_short_says_why(open_page, history_path):
    same = "Count the letters of strawberry one by one and keep a tally of each r."
    backend = ScriptedBackend([step_json("Plan", same), step_json("Plan again", same), "3"])
    page = open_page(backend).ask(STRAWBERRY).wait_until_done()

    assert page.step_labels() == ["Step 1: Plan"]  # fewer than the three asked for...
    assert any(c.endswith("1 repeated step cut") for c in page.captions())  # ...why
    assert page.answers_shown() == 1


def test_self_consistency_shows_each_chain_the_vote_and_the_winner(open_page, history_path):
    answers = iter(["**3**", "**3**", "**2**", "**3**"])

    def script(request):
        if request.purpose == "answer":
            return next(answers, "**3**")
        done = sum(1 for m in request.messages if m["role"] == "assistant")
        action = "final_answer" if done >= 2 else "continue"
        return step_json(f"Step {done + 1}", f"Distinct reasoning {done} " * 3, action)

    page = open_page(ScriptedBackend([script], repeat_last=True))
    page.at.sidebar.radio(key="tc.strategy").set_value("sc").run()
    page.at.sidebar.number_input(key="tc.k").set_value(4)
    page.ask(STRAWBERRY).wait_until_done()

    texts = page.texts()
    assert sum(1 for t in texts if t.startswith("- Chain ")) == 4
    vote = next(c for c in page.captions() if c.startswith("Vote of 4 chains"))
    assert "3 × 3" in vote and "2 × 1" in vote
    # The winning chain is shown in full, with its answer; the history keeps it.
    assert page.step_labels() == ["Step 1", "Step 2", "Step 3"]  # titled "Step N": one heading
    assert "**3**" in texts
    store = HistoryStore(history_path)
    (listed,) = store.list()
    kept = store.get(listed.id)
    assert len(kept.steps) == 3 and kept.answer.text == "**3**"
