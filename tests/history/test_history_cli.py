"""``thinkchain history`` and the history kept by ``thinkchain ask``."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from thinkchain import Chain, ChainSettings
from thinkchain.cli import app
from thinkchain.history import ChainRecorder, HistoryStore
from thinkchain.models.backends.scripted import ScriptedBackend, step_json

runner = CliRunner()


def add_chain(db: Path, question: str, chain_id: str) -> None:
    backend = ScriptedBackend(
        [
            step_json("Look", f"Looking at: {question}"),
            step_json("Think", "Thinking hard."),
            step_json("Check", "Checked.", "final_answer"),
            f"The answer to {question!r}.",
        ]
    )
    settings = ChainSettings(mode="iterative")  # the scripted steps are JSON, one per call
    recorder = ChainRecorder(db, chain_id=chain_id, settings=settings)
    for event in Chain(backend, settings).stream(question):
        recorder.handle(event)
    recorder.close()
    assert recorder.error is None


def invoke(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args))


def test_list_show_export_and_rm(tmp_path):
    db = str(tmp_path / "h.sqlite3")
    empty = invoke("history", "list", "--history", db)
    assert empty.exit_code == 0 and "no chains yet" in empty.output

    add_chain(Path(db), "What is 17 * 23?", "aaa111")
    add_chain(Path(db), "Is 91 prime?", "bbb222")

    listed = invoke("history", "list", "--history", db)
    assert listed.exit_code == 0
    lines = listed.stdout.splitlines()
    assert lines[1].startswith("bbb222") and "Is 91 prime?" in lines[1]  # newest first
    assert lines[2].startswith("aaa111") and "completed" in lines[2]
    as_json = json.loads(invoke("history", "list", "--json", "--history", db).stdout)
    assert [(r["id"], r["steps"]) for r in as_json] == [("bbb222", 3), ("aaa111", 3)]

    shown = invoke("history", "show", "aaa", "--history", db)
    assert shown.exit_code == 0
    assert "> What is 17 * 23?" in shown.stdout and "## Step 3: Check" in shown.stdout
    assert "The answer to 'What is 17 * 23?'." in shown.stdout

    exported = json.loads(
        invoke("history", "export", "bbb222", "-f", "json", "--history", db).stdout
    )
    assert exported["question"] == "Is 91 prime?"
    assert [s["title"] for s in exported["steps"]] == ["Look", "Think", "Check"]
    target = tmp_path / "chain.md"
    written = invoke(
        "history", "export", "bbb", "--format", "md", "-o", str(target), "--history", db
    )
    assert written.exit_code == 0 and target.read_text().startswith("# Question\n\n> Is 91 prime?")
    bad = invoke("history", "export", "bbb", "--format", "xml", "--history", db)
    assert bad.exit_code == 2 and "md or json" in bad.output

    removed = invoke("history", "rm", "aaa111", "--history", db)
    assert removed.exit_code == 0
    missing = invoke("history", "show", "aaa111", "--history", db)
    assert missing.exit_code == 1 and "no chain" in missing.output
    assert [r.id for r in HistoryStore(db).list()] == ["bbb222"]


def test_ask_keeps_its_chain_unless_told_not_to(tmp_path):
    db = str(tmp_path / "h.sqlite3")
    kept = invoke("ask", "--demo", "-q", "--history", db, "How many r in strawberry?")
    assert kept.exit_code == 0
    skipped = invoke("ask", "--demo", "-q", "--no-history", "--history", db, "Not kept")
    assert skipped.exit_code == 0
    with HistoryStore(db) as store:
        [record] = store.list()
        saved = store.get(record.id)
    assert saved is not None and saved.source == "cli" and saved.status == "completed"
    assert saved.question == "How many r in strawberry?" and len(saved.steps) == 3
