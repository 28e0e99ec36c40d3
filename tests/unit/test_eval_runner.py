"""The evaluation runner on the scripted backend: records, errors, resume, concurrency."""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from thinkchain import ChainSettings
from thinkchain.chain.backend import GenerationRequest, RequestRejected
from thinkchain.chain.settings import StrategySettings
from thinkchain.eval.datasets import Dataset
from thinkchain.eval.items import Item
from thinkchain.eval.modes import parse_modes
from thinkchain.eval.records import Record
from thinkchain.eval.report import ReportInfo
from thinkchain.eval.runner import (
    PLOT_FILE,
    RESULTS_FILE,
    SUMMARY_FILE,
    EvalError,
    Evaluation,
)
from thinkchain.eval.solve import SolveConfig
from thinkchain.eval.solve import solve as real_solve
from thinkchain.models.backends.scripted import Fault, Reply, ScriptedBackend, step_json

SETTINGS = ChainSettings(
    mode="iterative", min_steps=1, retry_base_delay=0.0, retry_max_delay=0.0, max_retries=0
)


def dataset(n: int) -> Dataset:
    items = [Item(f"q{i}", f"What is {i} + {i + 1}?", str(2 * i + 1)) for i in range(n)]
    return Dataset("sums", "sums", items)


def _numbers(request: GenerationRequest) -> tuple[int, int]:
    question = next(m["content"] for m in request.messages if m["role"] == "user")
    a, b = (int(x) for x in re.findall(r"\d+", question)[:2])
    return a, b


def arithmetic(request: GenerationRequest, delay: float = 0.0) -> Reply:
    """A model that adds right, except that it answers odd sums wrong when asked directly."""
    a, b = _numbers(request)
    right = a + b
    if request.purpose == "direct":
        text = str(right if a % 2 == 0 else right + 1)
    elif request.purpose == "cot":
        text = f"{a} + {b} = {right}.\nAnswer: {right}"
    elif request.purpose == "answer":
        text = f"The sum is **{right}**."
    else:
        text = step_json("Add", f"{a} + {b} = {right}", "final_answer")
    return Reply(text, delay=delay)


def model(delay: float = 0.0) -> ScriptedBackend:
    return ScriptedBackend([lambda r: arithmetic(r, delay)], repeat_last=True)


@dataclass
class OneAtATime(ScriptedBackend):
    parallel_sequences: int | None = 1


def evaluation(
    tmp_path: Path,
    backend: ScriptedBackend,
    modes: str = "direct,cot,chain",
    n: int = 4,
    *,
    settings: ChainSettings = SETTINGS,
    **kw,
) -> Evaluation:
    config = SolveConfig(
        settings,
        StrategySettings(
            strategy="sc",
            k=kw.pop("k", 3),
            early_stop=kw.pop("early_stop", "off"),
            agree_n=kw.pop("agree_n", 3),
        ),
    )
    return Evaluation(dataset(n), parse_modes(modes), backend, config, tmp_path / "out", **kw)


def run(ev: Evaluation, on_record=None) -> list[Record]:
    return asyncio.run(ev.arun(on_record))


def lines(ev: Evaluation) -> list[dict]:
    text = (ev.out_dir / RESULTS_FILE).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


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


def test_every_item_and_mode_is_recorded_and_scored(tmp_path: Path) -> None:
    ev = evaluation(tmp_path, model())
    new = run(ev)
    assert len(new) == 12
    rows = lines(ev)
    assert {(r["id"], r["mode"]) for r in rows} == {
        (f"q{i}", m) for i in range(4) for m in ("direct", "cot", "chain")
    }
    row = next(r for r in rows if r["id"] == "q1" and r["mode"] == "direct")
    # Every field a reader of the file needs.
    assert row["gold"] == "3" and row["prediction"] == "4" and row["correct"] is False
    assert row["answer"] == "4" and row["error"] is None and row["steps"] == 0
    assert row["prompt_tokens"] > 0 and row["completion_tokens"] > 0 and row["seconds"] >= 0
    chain = next(r for r in rows if r["id"] == "q1" and r["mode"] == "chain")
    assert (
        chain["correct"] is True and chain["steps"] == 1 and chain["answer"] == "The sum is **3**."
    )

    summaries, _ = ev.summaries()
    accuracy = {s.mode: (s.correct, s.items) for s in summaries}
    assert accuracy == {"direct": (2, 4), "cot": (4, 4), "chain": (4, 4)}


def test_the_summary_files(tmp_path: Path) -> None:
    ev = evaluation(tmp_path, model())
    run(ev)
    written = ev.write_summary(ReportInfo("sums (4 items)", "scripted", command="thinkchain eval"))
    text = (ev.out_dir / SUMMARY_FILE).read_text(encoding="utf-8")
    assert written.summary_path == ev.out_dir / SUMMARY_FILE
    assert "| direct | 4 | 50.0 % (15.0–85.0) |" in text
    assert "| cot | 4 | 100.0 % (51.0–100.0) |" in text
    assert (ev.out_dir / PLOT_FILE).read_bytes()[:4] == b"\x89PNG"
    # Each mode item by item against plain CoT: direct lost the two items CoT got right.
    assert "## Paired against `cot`" in text
    assert "| direct | 4 | 2 | 0 | 2 | 0 | -50.0 points | 0.50 |" in text
    assert "| chain | 4 | 4 | 0 | 0 | 0 | +0.0 points | 1.00 |" in text
    assert [(c.mode, c.only_baseline) for c in written.paired] == [("direct", 2), ("chain", 0)]
    manifest = json.loads((ev.out_dir / "run.json").read_text())
    assert manifest["model"] == "scripted" and manifest["settings"]["temperature"] == 0.2


def test_each_result_is_on_disk_before_the_next_item_starts(tmp_path: Path) -> None:
    ev = evaluation(tmp_path, model(), modes="direct", concurrency=1)
    seen_on_disk = []

    def on_record(record: Record) -> None:
        seen_on_disk.append(any(r["id"] == record.id for r in lines(ev)))

    run(ev, on_record)
    assert seen_on_disk == [True] * 4


def test_a_failed_chain_is_an_incorrect_record_with_its_error_kind(tmp_path: Path) -> None:
    def flaky(request: GenerationRequest):
        if _numbers(request)[0] == 2:
            return Fault(RequestRejected("model crashed"))
        return arithmetic(request)

    ev = evaluation(tmp_path, ScriptedBackend([flaky], repeat_last=True), modes="chain")
    run(ev)
    failed = [r for r in lines(ev) if r["error"]]
    assert [(r["id"], r["error"], r["correct"]) for r in failed] == [("q2", "backend_error", False)]
    assert "model crashed" in failed[0]["error_message"]
    (summary,) = ev.summaries()[0]
    assert (summary.items, summary.correct, summary.errors) == (4, 3, 1)


def test_a_bug_in_the_harness_is_kept_as_an_error_not_a_crash(tmp_path: Path, monkeypatch) -> None:
    async def sometimes_broken(backend, config, mode, item):
        if item.id == "q1":
            raise KeyError("oops")
        return await real_solve(backend, config, mode, item)

    monkeypatch.setattr("thinkchain.eval.runner.solve", sometimes_broken)
    ev = evaluation(tmp_path, model(), modes="cot")
    run(ev)
    errors = {r["id"]: r["error_message"] for r in lines(ev) if r["error"]}
    assert errors == {"q1": "KeyError: 'oops'"}


def test_resume_runs_only_what_is_missing(tmp_path: Path) -> None:
    first = model()
    run(evaluation(tmp_path, first, n=2))
    assert len(first.requests) > 0

    # Without --resume, the folder is not overwritten.
    with pytest.raises(EvalError, match="already holds results: add --resume"):
        evaluation(tmp_path, model(), n=4).prepare()

    second = model()
    ev = evaluation(tmp_path, second, n=4, resume=True)
    assert [(i.id, m.name) for i, m in ev.prepare()] == [
        (f"q{i}", m) for i in (2, 3) for m in ("direct", "cot", "chain")
    ]
    new = run(ev)
    assert {r.id for r in new} == {"q2", "q3"}
    # Only the new items were asked: their questions are the only ones the model saw.
    asked = {_numbers(r)[0] for r in second.requests}
    assert asked == {2, 3}
    assert len(ev.finished()) == 12

    # Nothing left: a resumed run asks nothing and still summarises everything.
    third = model()
    ev = evaluation(tmp_path, third, n=4, resume=True)
    assert run(ev) == [] and third.requests == []
    assert sum(s.items for s in ev.summaries()[0]) == 12


def test_resume_may_add_a_mode(tmp_path: Path) -> None:
    run(evaluation(tmp_path, model(), modes="direct", n=3))
    ev = evaluation(tmp_path, model(), modes="direct,cot", n=3, resume=True)
    assert [m.name for _, m in ev.prepare()] == ["cot"] * 3
    run(ev)
    assert [s.mode for s in ev.summaries()[0]] == ["direct", "cot"]


def test_resume_refuses_results_of_another_setup(tmp_path: Path) -> None:
    run(evaluation(tmp_path, model(), n=1))
    hotter = SETTINGS.model_copy(update={"temperature": 0.5})
    with pytest.raises(EvalError, match=r"settings\.temperature: 0\.2 then, 0\.5 now"):
        evaluation(tmp_path, model(), n=1, settings=hotter, resume=True).prepare()


async def test_an_interrupted_run_loses_only_the_items_in_flight(tmp_path: Path) -> None:
    ev = evaluation(tmp_path, model(delay=0.002), modes="direct,cot", n=6, concurrency=2)
    task = asyncio.create_task(ev.arun(lambda record: None))
    while len(ev.finished()) < 3:
        await asyncio.sleep(0.005)
    task.cancel()  # what Ctrl-C does to the run
    with pytest.raises(asyncio.CancelledError):
        await task
    kept = lines(ev)
    assert 3 <= len(kept) < 12
    assert all(r["error"] is None for r in kept)  # no "cancelled" results were written

    again = evaluation(tmp_path, model(), modes="direct,cot", n=6, resume=True)
    await again.arun()
    finished = again.finished()
    assert len(finished) == 12 and len({r.key for r in finished}) == 12
    assert len(lines(again)) == 12  # nothing ran twice


def test_a_line_torn_by_a_crash_is_skipped_and_its_item_runs_again(tmp_path: Path) -> None:
    ev = evaluation(tmp_path, model(), modes="direct", n=3)
    run(ev)
    path = ev.out_dir / RESULTS_FILE
    text = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join(text[:2]) + "\n" + text[2][:25], encoding="utf-8")  # no newline

    again = evaluation(tmp_path, model(), modes="direct", n=3, resume=True)
    assert [i.id for i, _ in again.prepare()] == ["q2"]
    assert again.damaged_lines == 1
    run(again)
    assert len(again.finished()) == 3
    # The new line starts on a line of its own: the file reads cleanly apart from the torn one.
    assert again.results.load().damaged_lines == 1


def test_retry_errors_runs_failed_items_again(tmp_path: Path) -> None:
    broken = ScriptedBackend([Fault(RequestRejected("down"))], repeat_last=True)
    run(evaluation(tmp_path, broken, modes="direct", n=2))
    ev = evaluation(tmp_path, model(), modes="direct", n=2, resume=True)
    assert ev.prepare() == []  # errors are results too...
    ev = evaluation(tmp_path, model(), modes="direct", n=2, resume=True, retry_errors=True)
    assert len(ev.prepare()) == 2  # ...unless asked to try them again
    run(ev)
    assert [r.error for r in ev.finished()] == [None, None]  # the later line wins


def test_items_overlap_with_concurrency(tmp_path: Path) -> None:
    ev = evaluation(tmp_path, model(delay=0.002), modes="cot", n=8, concurrency=4)
    assert ev.concurrency == 4
    assert max_overlap(run(ev)) >= 2


def test_without_concurrency_items_run_one_at_a_time(tmp_path: Path) -> None:
    ev = evaluation(tmp_path, model(delay=0.002), modes="cot", n=6, concurrency=1)
    assert max_overlap(run(ev)) == 1


def test_a_one_at_a_time_backend_never_gets_two_items(tmp_path: Path) -> None:
    backend = OneAtATime([lambda r: arithmetic(r, 0.002)], repeat_last=True)
    ev = evaluation(tmp_path, backend, modes="cot", n=6, concurrency=4)
    assert ev.concurrency == 1
    assert max_overlap(run(ev)) == 1


def test_self_consistency_records_the_vote(tmp_path: Path) -> None:
    def varied(request: GenerationRequest) -> Reply:
        a, b = _numbers(request)
        wrong = request.seed == 1  # one sample of three is wrong
        return Reply(str(a + b + (1 if wrong else 0)))

    backend = ScriptedBackend([varied], repeat_last=True)
    ev = evaluation(tmp_path, backend, modes="sc:direct", n=2, k=3)
    run(ev)
    row = lines(ev)[0]
    assert row["mode"] == "sc:direct" and row["correct"] is True
    assert row["extra"]["votes"] == {"1": 2, "2": 1}
    assert row["extra"]["samples"] == 3
    assert row["extra"]["sample_answers"] == ["1", "2", "1"]
    # Tokens count every sample.
    assert row["completion_tokens"] == 3
    # The summary says how far the samples agreed: two of three, on both items.
    written = ev.write_summary(ReportInfo("sums (2 items)", "scripted"))
    assert "| sc:direct | 2 of 3 | 2 | 2 |" in written.summary_path.read_text(encoding="utf-8")


def test_verify_revises_a_wrong_answer(tmp_path: Path) -> None:
    def off_by_one_then_checked(request: GenerationRequest) -> Reply:
        a, b = _numbers(request)
        if request.purpose == "verify":  # the chain's verification phase
            return Reply(f"Recomputing: {a} + {b} = {a + b}.\nAnswer: {a + b}")
        if request.purpose == "answer":
            return Reply(f"The sum is {a + b + 1}.")
        return Reply(step_json("Add", "adding", "final_answer"))

    backend = ScriptedBackend([off_by_one_then_checked], repeat_last=True)
    ev = evaluation(tmp_path, backend, modes="chain,chain+verify", n=2)
    run(ev)
    rows = {(r["id"], r["mode"]): r for r in lines(ev)}
    plain, checked = rows[("q0", "chain")], rows[("q0", "chain+verify")]
    assert plain["correct"] is False and "revised" not in plain["extra"]
    assert checked["correct"] is True and checked["prediction"] == "1"
    assert (checked["extra"]["revised"], checked["extra"]["cut"]) == (True, 0)
    assert checked["steps"] == plain["steps"] + 1  # the check is one more step
    # Every step is kept with the row, the check last, so a wrong chain can be read later.
    assert len(checked["extra"]["chain"]) == checked["steps"]
    assert checked["extra"]["chain"][:-1] == plain["extra"]["chain"]
    assert checked["extra"]["chain"][-1]["content"].endswith("Answer: 1")
    assert checked["completion_tokens"] > plain["completion_tokens"]
    # The answer the check overturned is kept, and the summary says which way it went.
    assert checked["extra"]["answer_before_check"] == "The sum is 2."
    written = ev.write_summary(ReportInfo("sums (2 items)", "scripted"))
    text = written.summary_path.read_text(encoding="utf-8")
    assert "## What verification changed" in text
    assert "| chain+verify | 2 | 2 | 2 | 0 | 0 |" in text  # both wrong answers put right
    assert "each sample" not in text


def test_sc_stops_when_the_first_answers_agree_and_the_setup_remembers_how_many(
    tmp_path: Path,
) -> None:
    def third_differs(request: GenerationRequest) -> Reply:
        a, b = _numbers(request)
        return Reply(str(a + b + (1 if request.seed == 2 else 0)))

    backend = ScriptedBackend([third_differs], repeat_last=True)
    ev = evaluation(tmp_path, backend, "sc:direct", n=2, k=5, early_stop="agree", agree_n=2)
    run(ev)
    # The first two samples agreed on every item: the other three never ran.
    assert [row["extra"]["samples"] for row in lines(ev)] == [2, 2]
    assert len(backend.requests) == 4
    # Resuming with another agreement count would mix two setups in one table.
    again = evaluation(
        tmp_path, model(), "sc:direct", n=3, k=5, early_stop="agree", agree_n=3, resume=True
    )
    with pytest.raises(EvalError, match="agree_n: 2 then, 3 now"):
        run(again)


def test_under_self_consistency_each_samples_check_is_counted(tmp_path: Path) -> None:
    def off_by_one_then_checked(request: GenerationRequest) -> Reply:
        a, b = _numbers(request)
        if request.purpose == "verify":  # two samples' checks find the sum, one a wrong one
            return Reply(f"Answer: {a + b + (2 if request.seed == 2 else 0)}")
        if request.purpose == "answer":
            return Reply(f"The sum is {a + b + 1}.")
        return Reply(step_json("Add", "adding", "final_answer"))

    backend = ScriptedBackend([off_by_one_then_checked], repeat_last=True)
    ev = evaluation(tmp_path, backend, modes="sc+verify", n=2, k=3)
    run(ev)
    for row in lines(ev):
        assert row["correct"] is True  # two checked samples out of three are right
        assert row["extra"]["samples_revised"] == [True, True, True]
        overturned = f"The sum is {int(row['gold']) + 1}."
        assert row["extra"]["sample_answers_before_check"] == [overturned] * 3
    written = ev.write_summary(ReportInfo("sums (2 items)", "scripted"))
    text = written.summary_path.read_text(encoding="utf-8")
    # Six sample chains checked: four wrong answers put right, two replaced by other wrong ones.
    assert "| sc+verify | 6 | 6 | 4 | 0 | 2 |" in text
    assert "each sample is a chain with its own check" in text


def test_verify_keeps_the_answer_when_the_check_agrees(tmp_path: Path) -> None:
    def agreeing(request: GenerationRequest) -> Reply:
        if request.purpose == "verify":
            a, b = _numbers(request)
            return Reply(f"Answer: {a + b}")
        return arithmetic(request)

    backend = ScriptedBackend([agreeing], repeat_last=True)
    ev = evaluation(tmp_path, backend, modes="chain+verify", n=2)
    run(ev)
    assert all(r["correct"] and not r["extra"]["revised"] for r in lines(ev))
    assert all(r["extra"]["cut"] == 0 for r in lines(ev))


def test_rescore_reads_the_stored_answers_again(tmp_path: Path) -> None:
    ev = evaluation(tmp_path, model(), modes="chain", n=2)
    run(ev)
    path = ev.out_dir / RESULTS_FILE
    rows = lines(ev)
    for row in rows:  # as if an older normaliser had misread every answer
        row["prediction"], row["correct"] = None, False
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    assert ev.summaries()[0][0].correct == 0
    assert ev.summaries(rescore_answers=True)[0][0].correct == 2


def test_loops_the_chain_cut_are_counted_per_item_and_in_the_summary(tmp_path):
    looped: set[str] = set()

    def loops_once(request):
        key = next(m["content"] for m in request.messages if m["role"] == "user")  # question
        if request.purpose == "step" and key not in looped:
            looped.add(key)
            return Reply('{"title": "T", "content": "' + "again and again " * 60, chunk_size=8)
        return arithmetic(request)

    ev = evaluation(tmp_path, ScriptedBackend([loops_once], repeat_last=True), modes="chain", n=2)
    records = run(ev)
    assert all(r.correct for r in records)
    assert [row["extra"]["cut"] for row in lines(ev)] == [1, 1]
    # The cut text is in the row, so a loop can be read after the run.
    for row in lines(ev):
        [cut] = row["extra"]["cut_steps"]
        assert cut["index"] == 1 and "again and again again" in cut["text"]
    from thinkchain.eval.stats import summarize

    assert summarize(records, ["chain"])[0].cut == 2


def coding(request: GenerationRequest) -> Reply:
    """A model that adds with a program when code steps are offered, and reads the output."""
    a, b = _numbers(request)
    if request.purpose == "answer":
        return Reply(f"The sum is **{a + b}**.")
    offered = "```python" in request.messages[0]["content"]
    ran = any("```output" in m["content"] for m in request.messages if m["role"] == "user")
    if offered and not ran:
        return Reply(step_json("Add", f"```python\nprint({a} + {b})\n```"))
    return Reply(step_json("Read", f"The sum is {a + b}.", "final_answer"))


def test_python_rows_keep_each_steps_code_and_output(tmp_path: Path) -> None:
    backend = ScriptedBackend([coding], repeat_last=True)
    ev = evaluation(tmp_path, backend, "chain,chain+python,sc+python", n=2)
    run(ev)
    rows = {(row["id"], row["mode"]): row for row in lines(ev)}
    assert all(row["correct"] for row in rows.values())
    coded = rows[("q1", "chain+python")]["extra"]["chain"][0]
    assert coded["runs"][0]["code"] == "print(1 + 2)"
    assert coded["runs"][0]["output"].strip() == "3"
    assert all("runs" not in step for step in rows[("q1", "chain")]["extra"]["chain"])
    samples = rows[("q1", "sc+python")]["extra"]["sample_runs"]
    assert samples and all(runs[0]["output"].strip() == "3" for runs in samples)
