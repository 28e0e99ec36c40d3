"""The history store and the recorder that fills it from a chain's events."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest

from thinkchain import CancelToken, Chain, ChainSettings, StepDone
from thinkchain.chain.backend import BackendError
from thinkchain.history import (
    ChainRecorder,
    HistoryError,
    HistoryStore,
    default_path,
    to_json,
    to_markdown,
)
from thinkchain.models.backends.scripted import (
    Fault,
    Reply,
    ScriptedBackend,
    demo_backend,
    step_json,
)

QUESTION = "How many letters r are in the word strawberry?"


def record_chain(path: Path, model, settings=None, question=QUESTION, **kwargs):  # type: ignore[no-untyped-def]
    settings = settings or ChainSettings(mode="iterative")
    recorder = ChainRecorder(path, settings=settings, source="test", **kwargs)
    result = None
    for event in Chain(model, settings).stream(question):
        recorder.handle(event)
        result = getattr(event, "result", result)
    recorder.close()
    return recorder, result


def test_a_chain_is_kept_exactly_as_it_ran(tmp_path):
    db = tmp_path / "h.sqlite3"
    recorder, result = record_chain(db, demo_backend(), backend="demo script")

    assert recorder.error is None and recorder.saved_steps == 3
    with HistoryStore(db) as store:
        saved = store.get(recorder.chain_id)
    assert saved is not None
    assert saved.status == "completed" and saved.source == "test"
    # As exported: times are kept to a tenth of a millisecond.
    assert [s.to_dict() for s in saved.steps] == [s.to_dict() for s in result.steps]
    assert saved.answer is not None and saved.answer.to_dict() == result.answer.to_dict()
    assert saved.seconds == pytest.approx(result.seconds)
    assert saved.usage == result.usage
    assert saved.settings["max_steps"] == 25 and saved.backend == "demo script"


def test_the_default_location_follows_the_data_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("THINKCHAIN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("THINKCHAIN_HISTORY", raising=False)
    assert default_path() == tmp_path / "data" / "history.sqlite3"
    monkeypatch.setenv("THINKCHAIN_HISTORY", str(tmp_path / "elsewhere.db"))
    assert default_path() == tmp_path / "elsewhere.db"


def test_the_database_runs_in_wal_mode_and_waits_for_locks(tmp_path):
    db = tmp_path / "h.sqlite3"
    HistoryStore(db, timeout=7).close()
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with HistoryStore(db, timeout=7) as store:
        assert store._conn.execute("PRAGMA busy_timeout").fetchone()[0] == 7000


def test_each_step_is_committed_as_soon_as_it_is_done(tmp_path):
    db = tmp_path / "h.sqlite3"
    backend = ScriptedBackend(
        [
            step_json("One", "first"),
            step_json("Two", "second"),
            Reply(step_json("Three", "third", "final_answer"), first_delay=0.5),
            "Three.",
        ]
    )
    recorder = ChainRecorder(db, settings=ChainSettings(mode="iterative"))
    seen_while_running: list[tuple[str, int]] = []
    for event in Chain(backend, ChainSettings(mode="iterative")).stream(QUESTION):
        recorder.handle(event)
        if isinstance(event, StepDone) and event.step.index == 2:
            # Step 3 is being generated now; the recorder has not been given anything more.
            deadline = time.monotonic() + 10
            while recorder.saved_steps < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
            with HistoryStore(db) as reader:  # another connection, as another process reads
                saved = reader.get(recorder.chain_id)
                assert saved is not None
                seen_while_running.append((saved.status, len(saved.steps)))
    recorder.close()
    assert seen_while_running == [("running", 2)]


def test_a_cancelled_chain_keeps_its_finished_steps(tmp_path):
    db = tmp_path / "h.sqlite3"
    cancel = CancelToken()
    backend = ScriptedBackend(
        [step_json("One", "first"), Reply(step_json("Two", "never"), first_delay=60)]
    )
    recorder = ChainRecorder(db, settings=ChainSettings(mode="iterative"))
    for event in Chain(backend, ChainSettings(mode="iterative")).stream(QUESTION, cancel=cancel):
        recorder.handle(event)
        if isinstance(event, StepDone):
            cancel.cancel()
    recorder.close()
    with HistoryStore(db) as store:
        saved = store.get(recorder.chain_id)
    assert saved is not None and saved.status == "cancelled"
    assert [s.title for s in saved.steps] == ["One"]
    assert saved.error is not None and saved.error.kind == "cancelled"


def test_a_failed_chain_keeps_its_steps_and_its_error(tmp_path):
    db = tmp_path / "h.sqlite3"
    backend = ScriptedBackend([step_json("One", "first"), Fault(BackendError("boom"))])
    recorder, _ = record_chain(db, backend)
    with HistoryStore(db) as store:
        saved = store.get(recorder.chain_id)
    assert saved is not None and saved.status == "backend_error"
    assert saved.error is not None and "boom" in saved.error.message
    assert len(saved.steps) == 1 and saved.answer is None


def test_a_refused_question_leaves_nothing_behind(tmp_path):
    db = tmp_path / "h.sqlite3"
    _, result = record_chain(db, demo_backend(), question="   ")
    assert result.error.kind == "invalid_input"
    with HistoryStore(db) as store:
        assert store.list() == []


def test_writes_that_meet_a_lock_are_kept_and_saved_once_it_is_gone(tmp_path):
    db = tmp_path / "h.sqlite3"
    HistoryStore(db).close()
    blocker = sqlite3.connect(db, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    recorder = ChainRecorder(db, settings=ChainSettings(mode="iterative"), timeout=0.2)
    events = list(Chain(demo_backend(), ChainSettings(mode="iterative")).stream(QUESTION))
    for event in events[: len(events) // 2]:
        recorder.handle(event)
    deadline = time.monotonic() + 10
    while recorder.error is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert recorder.error is not None and "locked" in recorder.error
    blocker.execute("ROLLBACK")
    blocker.close()
    for event in events[len(events) // 2 :]:
        recorder.handle(event)
    recorder.close()

    assert recorder.error is None
    with HistoryStore(db) as store:
        saved = store.get(recorder.chain_id)
    assert saved is not None and saved.status == "completed" and len(saved.steps) == 3


def test_an_unusable_location_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(HistoryError, match="cannot be used"):
        HistoryStore(blocker / "h.sqlite3")
    recorder, result = record_chain(blocker / "h.sqlite3", demo_backend())
    assert result.ok  # the chain does not care
    assert recorder.error is not None and "not saved" in recorder.error


def test_ids_resolve_from_their_start_and_delete_takes_the_direct_answer_along(tmp_path):
    db = tmp_path / "h.sqlite3"
    record_chain(db, demo_backend(), chain_id="abc123")
    record_chain(
        db, demo_backend(), ChainSettings(mode="direct"), chain_id="abd999", paired_with="abc123"
    )
    with HistoryStore(db) as store:
        assert store.resolve("abc") == "abc123"
        with pytest.raises(HistoryError, match="several"):
            store.resolve("ab")
        with pytest.raises(HistoryError, match="no chain"):
            store.resolve("zzz")
        assert [r.id for r in store.list()] == ["abc123"]  # the direct answer is not listed alone
        saved = store.get("abc123")
        assert saved is not None and saved.paired is not None
        assert saved.paired.answer.text == "There are 2 letters r in strawberry."  # type: ignore[union-attr]
        assert store.delete("abc123")
        assert store.list(include_paired=True) == []
        assert store._conn.execute("SELECT COUNT(*) FROM steps").fetchone()[0] == 0


def test_exports_hold_the_whole_chain(tmp_path):
    db = tmp_path / "h.sqlite3"
    recorder, result = record_chain(db, demo_backend())
    with HistoryStore(db) as store:
        saved = store.get(recorder.chain_id)
    assert saved is not None

    data = json.loads(to_json(saved))
    assert data["id"] == recorder.chain_id and data["status"] == "completed"
    assert [s["title"] for s in data["steps"]] == [s.title for s in result.steps]
    assert data["answer"] == result.answer.text
    assert data["usage"]["completion_tokens"] == result.usage.completion_tokens

    md = to_markdown(saved)
    assert md.startswith("# Question\n\n> How many letters r")
    positions = [md.index(f"## Step {i}: ") for i in (1, 2, 3)]
    assert positions == sorted(positions)
    assert "## Final answer\n\nThere are **3** letters r" in md
    assert "**Total time: " in md
    zh = to_markdown(saved, "zh")
    assert "## 最终答案" in zh
    assert "\n## 第 1 步：" in zh and "**总用时：" in zh  # the page's headings and colons
