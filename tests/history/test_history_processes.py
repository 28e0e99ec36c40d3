"""The history shared by real processes: killed mid-chain, written by many at once, read-only."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from thinkchain.history import HistoryStore
from thinkchain.models.backends.scripted import demo_backend
from thinkchain.testing.fake_openai import FakeOpenAIServer, FakeReply, FakeStall
from thinkchain.ui import page as page_module

THINKCHAIN = str(Path(sys.executable).parent / "thinkchain")
QUESTION = "How many letters r are in the word strawberry?"


def step(title: str, content: str, action: str = "continue") -> str:
    return json.dumps({"title": title, "content": content, "next_action": action})


def wait_until(condition, timeout: float = 60, what: str = "") -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def saved_steps(db: Path) -> int:
    if not db.exists():
        return 0
    with HistoryStore(db) as store:
        records = store.list()
        return records[0].step_count if records else 0


def test_kill_9_mid_chain_keeps_every_finished_step_readable(tmp_path):
    db = tmp_path / "history.sqlite3"
    script = [
        FakeReply(step("Spelling", "s-t-r-a-w-b-e-r-r-y")),
        FakeReply(step("Counting", "r at 3, 8 and 9")),
        FakeStall(seconds=120),  # the third step never comes: the process is killed during it
    ]
    with FakeOpenAIServer(script) as fake:
        proc = subprocess.Popen(
            [
                THINKCHAIN,
                "ask",
                "--base-url",
                fake.url,
                "--mode",
                "iterative",
                "--history",
                str(db),
                QUESTION,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_until(lambda: len(fake.chat_requests()) >= 3, what="the third step's request")
            wait_until(lambda: saved_steps(db) == 2, what="two saved steps")
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)

    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    with HistoryStore(db) as store:
        [record] = store.list()
        saved = store.get(record.id)
    assert saved is not None and saved.status == "interrupted"
    assert [(s.title, s.content) for s in saved.steps] == [
        ("Spelling", "s-t-r-a-w-b-e-r-r-y"),
        ("Counting", "r at 3, 8 and 9"),
    ]
    shown = subprocess.run(
        [THINKCHAIN, "history", "show", record.id[:6], "--history", str(db)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    assert "## Step 2: Counting" in shown.stdout and "status: interrupted" in shown.stdout


_WRITER = textwrap.dedent(
    """
    import sys, time
    from thinkchain import Chain, ChainSettings
    from thinkchain.models.backends.scripted import ScriptedBackend, step_json
    from thinkchain.history import ChainRecorder

    db, name, count, start_at = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    settings = ChainSettings(mode="iterative", min_steps=3)
    time.sleep(max(0.0, start_at - time.time()))  # every writer starts at the same moment
    for i in range(count):
        backend = ScriptedBackend([
            step_json(f"{name}/{i}/1", "one"),
            step_json(f"{name}/{i}/2", "two"),
            step_json(f"{name}/{i}/3", "three", "final_answer"),
            f"answer {name}/{i}",
        ])
        recorder = ChainRecorder(db, settings=settings, source=name)
        for event in Chain(backend, settings).stream(f"question {name}/{i}"):
            recorder.handle(event)
        recorder.close()
        if recorder.error:
            sys.exit(f"{name}/{i}: {recorder.error}")
    """
)


def test_many_processes_and_the_page_write_one_history_at_once(tmp_path, monkeypatch):
    db = tmp_path / "history.sqlite3"  # not created yet: the writers race to create it too
    monkeypatch.setenv("THINKCHAIN_HISTORY", str(db))
    writers, per_writer = 4, 10
    start_at = time.time() + 4
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(db), f"w{n}", str(per_writer), str(start_at)],
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(writers)
    ]
    time.sleep(max(0.0, start_at - time.time() - 1))
    procs += [
        subprocess.Popen(
            [THINKCHAIN, "ask", "--demo", "-q", "--history", str(db), f"cli question {n}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(2)
    ]
    # Meanwhile the web page runs a chain of its own in this process.
    page = AppTest.from_file(page_module.__file__, default_timeout=30)
    page.session_state[page_module.TEST_BACKEND_KEY] = demo_backend()
    page.run()
    time.sleep(max(0.0, start_at - time.time()))
    page.chat_input(key="tc.question").set_value(QUESTION)
    page.run()
    run = page.session_state[page_module.CHAT_KEY].run
    wait_until(lambda: run.done, what="the page's chain")
    assert run.history_error is None
    for proc in procs:
        _, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err

    with HistoryStore(db) as store:
        records = store.list(limit=None)
        full = [store.get(r.id) for r in records]
    assert len(records) == writers * per_writer + 2 + 1
    assert all(r.status == "completed" and r.step_count == 3 for r in records)
    titles = {s.title for r in full if r is not None for s in r.steps}
    for n in range(writers):
        for i in range(per_writer):
            assert {f"w{n}/{i}/1", f"w{n}/{i}/2", f"w{n}/{i}/3"} <= titles
    sources = sorted(r.source for r in records)
    assert sources.count("cli") == 2 and sources.count("ui") == 1
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def _without_root_powers(cmd: list[str]) -> list[str]:
    """Root writes read-only files anyway; drop that power so permissions apply as to users."""
    if os.geteuid() != 0:
        return cmd
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.fail("setpriv (util-linux) is needed to test a read-only file as root")
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search,-fowner", *cmd]


def test_a_read_only_history_is_reported_and_the_chain_still_runs(tmp_path):
    db = tmp_path / "history.sqlite3"
    first = subprocess.run(
        [THINKCHAIN, "ask", "--demo", "-q", "--history", str(db), "an earlier question"],
        capture_output=True,
        timeout=120,
    )
    assert first.returncode == 0
    db.chmod(0o444)

    asked = subprocess.run(
        _without_root_powers([THINKCHAIN, "ask", "--demo", "--history", str(db), QUESTION]),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert asked.returncode == 0, asked.stderr
    assert "There are **3** letters r" in asked.stdout
    assert "Step 3: Counting and checking" in asked.stderr  # shown as usual
    assert "not kept in the history" in asked.stderr and "read-only" in asked.stderr

    listed = subprocess.run(
        _without_root_powers([THINKCHAIN, "history", "list", "--history", str(db)]),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listed.returncode == 0, listed.stderr
    assert "an earlier question" in listed.stdout and QUESTION not in listed.stdout
