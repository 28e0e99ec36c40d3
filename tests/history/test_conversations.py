"""Conversations in the history: turns kept together, files from before them, and exports."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

from thinkchain import Chain, ChainSettings
from thinkchain.chain.events import CodeRun, FinalAnswer, Step, Usage
from thinkchain.history import (
    ChainRecorder,
    Conversation,
    HistoryStore,
    conversation_json,
    conversation_markdown,
    to_markdown,
)
from thinkchain.history.export import code_run_markdown
from thinkchain.models.backends.scripted import demo_backend

FIRST = "How many letters r are in the word strawberry?"
SECOND = "And in raspberry?"


def record(path: Path, question: str, **kwargs: object) -> ChainRecorder:
    recorder = ChainRecorder(path, source="test", **kwargs)  # type: ignore[arg-type]
    for event in Chain(demo_backend(), ChainSettings(mode="iterative")).stream(question):
        recorder.handle(event)
    recorder.close()
    assert recorder.error is None
    return recorder


def downgrade_to_first_schema(path: Path) -> None:
    """The file as thinkchain wrote it before conversations: no conversation column, version 1."""
    with sqlite3.connect(path) as conn:
        conn.execute("DROP INDEX chains_by_conversation")
        conn.execute("ALTER TABLE chains DROP COLUMN conversation")
        conn.execute("PRAGMA user_version = 1")


def columns(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        return [row[1] for row in conn.execute("PRAGMA table_info(chains)")]


def test_turns_of_a_conversation_are_kept_together_oldest_first(tmp_path):
    db = tmp_path / "h.sqlite3"
    first = record(db, FIRST)
    alone = record(db, "Something else entirely?")
    second = record(db, SECOND, conversation=first.chain_id)
    record(db, SECOND, conversation=first.chain_id, paired_with=second.chain_id)  # its direct

    with HistoryStore(db) as store:
        listed = store.conversations()
        opened = store.conversation(first.chain_id)
        assert store.conversation("nothing-here") is None
    # The conversation with the newest turn first; each lists its own turns, oldest first.
    assert [[turn.question for turn in c.turns] for c in listed] == [
        [FIRST, SECOND],
        ["Something else entirely?"],
    ]
    assert listed[0].id == first.chain_id and listed[1].id == alone.chain_id
    assert opened is not None and [turn.id for turn in opened.turns] == [
        first.chain_id,
        second.chain_id,
    ]
    # Reopened, each turn has its steps and its direct answer, and the context its answers.
    assert [len(turn.steps) for turn in opened.turns] == [3, 3]
    assert opened.turns[1].paired is not None and opened.turns[0].paired is None
    answer = opened.turns[0].answer
    assert answer is not None
    assert opened.context() == [
        {"role": "user", "content": FIRST},
        {"role": "assistant", "content": answer.text},
        {"role": "user", "content": SECOND},
        {"role": "assistant", "content": opened.turns[1].answer.text},  # type: ignore[union-attr]
    ]


def test_a_file_from_before_conversations_is_migrated_and_reads_as_before(tmp_path):
    db = tmp_path / "h.sqlite3"
    old = record(db, FIRST)
    record(db, FIRST, paired_with=old.chain_id)  # a direct answer compared with it
    other = record(db, SECOND)
    with HistoryStore(db) as store:
        before = [store.get(chain_id) for chain_id in (old.chain_id, other.chain_id)]
    downgrade_to_first_schema(db)
    assert "conversation" not in columns(db)

    with HistoryStore(db) as store:
        after = [store.get(chain_id) for chain_id in (old.chain_id, other.chain_id)]
        listed = store.conversations()
    assert "conversation" in columns(db)
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
    # Every chain and its direct answer read as they did; each is a conversation of its own.
    assert [r.to_dict() for r in after] == [r.to_dict() for r in before]  # type: ignore[union-attr]
    assert [c.id for c in listed] == [other.chain_id, old.chain_id]
    # A follow-up continues an old chain.
    record(db, SECOND, conversation=old.chain_id)
    with HistoryStore(db) as store:
        continued = store.conversation(old.chain_id)
    assert continued is not None and [t.question for t in continued.turns] == [FIRST, SECOND]


def test_chains_an_older_thinkchain_writes_into_a_migrated_file_stand_alone(tmp_path):
    db = tmp_path / "h.sqlite3"
    record(db, FIRST)
    with sqlite3.connect(db) as conn:  # an older process knows nothing of the new column
        conn.execute(
            "INSERT INTO chains (id, created_at, updated_at, question, status)"
            " VALUES ('oldprocess', 9e9, 9e9, 'From an old process', 'completed')"
        )
    with HistoryStore(db) as store:
        listed = store.conversations()
        opened = store.conversation("oldprocess")
    assert [c.id for c in listed] == ["oldprocess", listed[1].id]
    assert opened is not None and [t.question for t in opened.turns] == ["From an old process"]


def test_processes_opening_an_old_file_at_once_migrate_it_once(tmp_path):
    db = tmp_path / "h.sqlite3"
    record(db, FIRST)
    downgrade_to_first_schema(db)
    problems: list[BaseException] = []

    def open_it() -> None:
        try:
            HistoryStore(db).close()
        except BaseException as err:
            problems.append(err)

    threads = [threading.Thread(target=open_it) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert problems == []
    assert columns(db).count("conversation") == 1


def coded_turn(question: str) -> Step:
    ok = CodeRun("print(2 + 2)", "4\n", "ok", None, 0.04)
    failed = CodeRun("1 / 0", "", "error", "ZeroDivisionError: division by zero", 0.01, False)
    content = "Add.\n```python\nprint(2 + 2)\n```"
    return Step(1, "Adding", content, "final_answer", 0.2, 0.1, Usage(3, 4), runs=(ok, failed))


def test_exports_hold_every_turn_and_the_code_output_under_its_step(tmp_path):
    db = tmp_path / "h.sqlite3"
    first = record(db, FIRST)
    with HistoryStore(db) as store:
        store.start_chain("coded", SECOND, conversation=first.chain_id)
        store.add_step("coded", coded_turn(SECOND))
        store.set_answer("coded", FinalAnswer("4", 0.1, None, Usage(1, 1)))
        conversation = store.conversation(first.chain_id)
    assert conversation is not None

    text = conversation_markdown(conversation)
    assert text.index("# Question 1") < text.index(FIRST) < text.index("# Question 2")
    assert text.index("# Question 2") < text.index(SECOND) < text.index("print(2 + 2)")
    assert "*Output · 0.04 s*\n\n```text\n4\n```" in text
    assert "*Error · 0.01 s*\n\n```text\nZeroDivisionError: division by zero\n```" in text
    assert text.index("print(2 + 2)") < text.index("*Output") < text.index("0.20 s · 4 tokens")

    data = json.loads(conversation_json(conversation))
    assert data["conversation"] == first.chain_id
    assert [turn["question"] for turn in data["turns"]] == [FIRST, SECOND]
    assert data["turns"][1]["steps"][0]["runs"][0]["output"] == "4\n"
    # A conversation of one question exports as that chain always did.
    single = Conversation(first.chain_id, conversation.turns[:1])
    assert conversation_markdown(single, "zh") == to_markdown(conversation.turns[0], "zh")


def test_an_exported_run_stopped_by_a_limit_names_the_limit_in_the_export_language():
    stopped = CodeRun("while True: pass", "", "timeout", "stopped after 5 s", 5.0, False)
    english = "\n".join(code_run_markdown(stopped, "en"))
    chinese = "\n".join(code_run_markdown(stopped, "zh"))
    assert "*Error (time limit) · 5.00 s*" in english
    assert "*出错（超时） · 5.00 s*" in chinese and "timeout" not in chinese
    assert "```text\nstopped after 5 s\n```" in chinese
    plain = CodeRun("1 / 0", "", "error", "ZeroDivisionError: division by zero", 0.01, False)
    assert "*出错 · 0.01 s*" in "\n".join(code_run_markdown(plain, "zh"))
