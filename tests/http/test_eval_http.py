"""``thinkchain eval`` against a real fake OpenAI server: concurrency, the command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from thinkchain import ChainSettings
from thinkchain.chain.settings import StrategySettings
from thinkchain.cli import app
from thinkchain.eval.datasets import Dataset
from thinkchain.eval.items import Item
from thinkchain.eval.modes import parse_modes
from thinkchain.eval.records import Record
from thinkchain.eval.runner import Evaluation
from thinkchain.eval.solve import SolveConfig
from thinkchain.models.backends.openai_compat import OpenAICompatBackend, forget_dialects
from thinkchain.testing.fake_openai import FakeOpenAIServer

# The fake server answers "The answer is 42." to every free-text request.
ITEMS = [Item(f"q{i}", f"Question number {i}?", "42") for i in range(8)]


@pytest.fixture(autouse=True)
def _fresh_dialects():
    forget_dialects()
    yield
    forget_dialects()


@pytest.fixture
def server():
    # Each streamed word waits 20 ms: long enough that items in flight together overlap.
    with FakeOpenAIServer(token_delay=0.02) as fake:
        yield fake


def max_overlap(records: list[Record]) -> int:
    edges = sorted(
        [(r.started_at, 1) for r in records] + [(r.started_at + r.seconds, -1) for r in records],
        key=lambda edge: (edge[0], edge[1]),
    )
    running = best = 0
    for _, step in edges:
        running += step
        best = max(best, running)
    return best


def run_eval(server: FakeOpenAIServer, tmp_path: Path, concurrency: int, modes: str = "cot"):
    backend = OpenAICompatBackend([server.url], "fake-model")
    ev = Evaluation(
        Dataset("fake", "fake", ITEMS),
        parse_modes(modes),
        backend,
        SolveConfig(
            ChainSettings(min_steps=1), StrategySettings(strategy="sc", k=3, early_stop="off")
        ),
        tmp_path / f"out-{concurrency}",
        concurrency=concurrency,
    )
    return ev.run()  # on the shared loop, like the command line


def test_concurrency_sends_several_items_to_the_server_at_once(server, tmp_path: Path) -> None:
    records = run_eval(server, tmp_path, concurrency=4)
    assert all(r.correct for r in records) and len(records) == 8
    assert max_overlap(records) >= 3


def test_concurrency_one_sends_one_item_at_a_time(server, tmp_path: Path) -> None:
    records = run_eval(server, tmp_path, concurrency=1)
    assert max_overlap(records) == 1


def test_self_consistency_samples_run_concurrently_against_a_server(server, tmp_path: Path) -> None:
    records = run_eval(server, tmp_path, concurrency=1, modes="sc:cot")
    assert all(r.correct and r.extra["samples"] == 3 for r in records)
    # The K samples of one item overlap: the item takes about as long as one sample, not
    # three, so the items (one at a time) took well under 3 × the time of a cot item alone.
    single = run_eval(server, tmp_path / "single", concurrency=1, modes="cot")
    sc_time = sum(r.seconds for r in records)
    cot_time = sum(r.seconds for r in single)
    assert sc_time < 2 * cot_time


# ---- the command line -----------------------------------------------------------------------


def cli(*args: str):
    return CliRunner().invoke(app, ["eval", *args], catch_exceptions=False)


def write_dataset(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.jsonl"
    rows = [
        {"id": f"t{i}", "question": f"Tiny question {i}?", "answer": a}
        for i, a in enumerate(["42", "41", "$42.00"])
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_eval_command_end_to_end(server, tmp_path: Path) -> None:
    data = write_dataset(tmp_path)
    out = tmp_path / "results" / "tiny"
    common = ["--dataset", str(data), "--base-url", server.url, "--model", "fake-model"]
    result = cli(*common, "--modes", "direct,cot,chain", "--out", str(out), "--min-steps", "1")
    assert result.exit_code == 0, result.output
    assert "0 done, 9 to run" in result.output
    # Not a terminal: one line per finished item instead of a bar, with the running accuracy.
    assert "[9/9] " in result.output and "direct 67% cot 67% chain 67%" in result.output
    assert "66.7%" in result.output  # the table: 2 of 3 right in every mode
    # Then each mode against plain CoT, item by item.
    assert "direct vs cot on 3 items: " in result.output
    assert "chain vs cot on 3 items: " in result.output and "exact McNemar p" in result.output
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert len(rows) == 9
    summary = (out / "summary.md").read_text()
    assert "| chain | 3 | 66.7 % (20.8–93.9) |" in summary
    assert "- command: `" in summary and "--modes direct,cot,chain" in summary
    assert (out / "accuracy_vs_tokens.png").is_file()

    # Again without --resume: refused, in one line, nothing overwritten.
    again = cli(*common, "--modes", "direct,cot,chain", "--out", str(out))
    assert again.exit_code == 2
    assert "already holds results: add --resume" in again.output
    assert "Traceback" not in again.output

    # With --resume and one more mode: only that mode runs; the summary covers all four.
    resumed = cli(
        *common,
        "--modes",
        "direct,cot,chain,sc",
        "--out",
        str(out),
        "--resume",
        "--k",
        "3",
        "--min-steps",
        "1",
    )
    assert resumed.exit_code == 0, resumed.output
    assert "9 done, 3 to run" in resumed.output
    assert "| sc | 3 |" in (out / "summary.md").read_text()


def test_resume_with_other_settings_is_refused(server, tmp_path: Path) -> None:
    data = write_dataset(tmp_path)
    common = ["--dataset", str(data), "--base-url", server.url, "--out", str(tmp_path / "o")]
    assert cli(*common, "--modes", "direct").exit_code == 0
    result = cli(*common, "--modes", "direct", "--resume", "--temperature", "0.9")
    assert result.exit_code == 2
    assert "settings.temperature: 0.2 then, 0.9 now" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dataset", "letters", "--modes", "magic"], "unknown mode 'magic'"),
        (["--dataset", "nowhere.jsonl"], "no such dataset: nowhere.jsonl"),
        (["--dataset", "letters", "--k", "0", "--modes", "sc"], "--k must be at least 1"),
        (
            ["--dataset", "letters", "--early-stop", "agree", "--agree-n", "1"],
            "--agree-n must be at least 2",
        ),
        (["--dataset", "letters:tiny"], "unknown letters level 'tiny'"),
    ],
)
def test_mistakes_are_one_line(args: list[str], message: str) -> None:
    result = cli(*args)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_gsm8k_offline_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "datasets", None)  # as when it is not installed
    result = cli("--dataset", "gsm8k", "--n", "5")
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) <= 3  # one sentence, maybe wrapped
    assert "error:" in result.output and "datasets" in result.output
    assert "Traceback" not in result.output
