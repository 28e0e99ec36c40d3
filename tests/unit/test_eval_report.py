"""The numbers of a run: Wilson intervals, per-mode summaries, the Markdown table, the plot."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from thinkchain.eval.plot import plot_accuracy_vs_tokens
from thinkchain.eval.records import Record
from thinkchain.eval.report import (
    ReportInfo,
    level_table,
    markdown_report,
    markdown_table,
    rich_table,
)
from thinkchain.eval.stats import (
    accuracy_by_level,
    exact_mcnemar,
    paired_baseline,
    paired_comparisons,
    summarize,
    verification_effects,
    vote_agreement,
    wilson_interval,
)

# Known values (statsmodels' proportion_confint(method="wilson"), and by hand).
WILSON = [
    ((5, 10), (0.236593, 0.763407)),
    ((0, 10), (0.0, 0.277533)),
    ((10, 10), (0.722467, 1.0)),
    ((1, 10), (0.017876, 0.404150)),
    ((50, 100), (0.403832, 0.596168)),
    ((0, 1), (0.0, 0.793450)),
]


@pytest.mark.parametrize(("counts", "interval"), WILSON)
def test_wilson_interval_known_values(counts, interval) -> None:
    low, high = wilson_interval(*counts)
    assert low == pytest.approx(interval[0], abs=1e-5)
    assert high == pytest.approx(interval[1], abs=1e-5)


def test_wilson_interval_properties() -> None:
    for n in (1, 7, 200):
        for correct in range(n + 1):
            low, high = wilson_interval(correct, n)
            assert 0.0 <= low <= correct / n <= high <= 1.0
    # More items, narrower interval around the same share.
    assert wilson_interval(160, 200)[1] - wilson_interval(160, 200)[0] < (
        wilson_interval(16, 20)[1] - wilson_interval(16, 20)[0]
    )
    assert wilson_interval(0, 0) == (0.0, 1.0)  # nothing measured: anything is possible
    with pytest.raises(ValueError):
        wilson_interval(3, 2)


def rec(mode: str, correct: bool, tokens: int, **kw) -> Record:
    values = {"steps": 0, "seconds": 1.0, "prompt_tokens": 100, **kw}
    return Record(
        id=kw.pop("id", "x"),
        mode=mode,
        gold="1",
        prediction="1" if correct else "2",
        correct=correct,
        completion_tokens=tokens,
        **{k: v for k, v in values.items() if k != "id"},
    )


def test_summaries_per_mode() -> None:
    records = [
        rec("direct", True, 10, seconds=1.0),
        rec("direct", False, 30, seconds=3.0),
        rec("chain", True, 400, steps=4, seconds=20.0),
        rec("chain", True, 600, steps=6, seconds=30.0),
        rec("chain", False, 0, steps=0, seconds=2.0, error="backend_error"),
        rec("other", True, 1),  # a mode not asked for is not summarised
    ]
    direct, chain = summarize(records, ["direct", "chain", "sc"])
    assert (direct.mode, direct.items, direct.correct, direct.accuracy) == ("direct", 2, 1, 0.5)
    assert direct.mean_completion_tokens == 20
    assert direct.correct_per_1k_tokens == pytest.approx(1000 * 1 / 40)
    assert direct.seconds_per_item == 2.0
    assert (chain.items, chain.correct, chain.errors) == (3, 2, 1)
    assert chain.mean_steps == pytest.approx(10 / 3)
    assert chain.correct_per_1k_tokens == pytest.approx(2.0)
    assert (chain.low, chain.high) == wilson_interval(2, 3)


def test_no_tokens_means_no_efficiency_figure() -> None:
    (summary,) = summarize([rec("direct", False, 0)], ["direct"])
    assert summary.correct_per_1k_tokens is None
    assert "| direct | 1 | 0.0 % (0.0–79.3) |" in markdown_table([summary])


def test_markdown_table() -> None:
    records = [rec("direct", i < 3, 5) for i in range(4)] + [
        rec("chain", i < 9, 1234, steps=5, seconds=17.25, extra={"cut": i % 2}) for i in range(10)
    ]
    table = markdown_table(summarize(records, ["direct", "chain"]))
    lines = table.strip().splitlines()
    assert lines[0] == (
        "| mode | items | accuracy (95 % CI) | mean steps | generated tokens / item | "
        "prompt tokens / item | s / item | correct / 1k generated tokens | loops cut | errors |"
    )
    assert lines[1] == "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    assert lines[2] == "| direct | 4 | 75.0 % (30.1–95.4) | 0.0 | 5 | 100 | 1.0 | 150 | 0 | 0 |"
    assert lines[3] == (
        "| chain | 10 | 90.0 % (59.6–98.2) | 5.0 | 1,234 | 100 | 17.2 | 0.729 | 5 | 0 |"
    )


def test_markdown_report_says_what_was_measured() -> None:
    records = [rec("direct", True, 5, level="short"), rec("direct", False, 5, level="long")]
    info = ReportInfo(
        dataset="letters (2 items)",
        model="qwen",
        command="thinkchain eval --dataset letters",
        date="2026-01-01",
        notes=["backend: llama.cpp:qwen; concurrency 1"],
    )
    text = markdown_report(
        summarize(records, ["direct"]),
        info,
        levels=accuracy_by_level(records, ["direct"]),
        plot_file="accuracy_vs_tokens.png",
    )
    assert text.startswith("# Evaluation: letters (2 items)\n")
    assert "- command: `thinkchain eval --dataset letters`" in text
    assert "- backend: llama.cpp:qwen; concurrency 1" in text
    assert "| long | 0/1 |" in text and "| short | 1/1 |" in text
    assert "![accuracy against generated tokens per item](accuracy_vs_tokens.png)" in text


def test_level_table_marks_missing_cells() -> None:
    table = level_table({"short": {"a": (1, 2)}, "long": {"b": (0, 1)}}, ["a", "b"])
    assert "| long | – | 0/1 |" in table and "| short | 1/2 | – |" in table


def test_terminal_table_fits_80_columns() -> None:
    records = [rec("chain:iterative+verify", True, 123_456, seconds=1234.5, steps=25)]
    console = Console(width=80, record=True)
    console.print(rich_table(summarize(records, ["chain:iterative+verify"])))
    text = console.export_text()
    # The long mode name may fold; the numbers are never cut.
    assert "chain:iterativ" in text and "100.0%" in text and "123,456" in text
    assert "1234.5" in text and "21–100" in text and "0.0081" in text
    assert max(len(line) for line in text.splitlines()) <= 80


def test_plot_is_a_png(tmp_path: Path) -> None:
    records = [rec("direct", True, 5), rec("cot", False, 300), rec("sc", True, 4000)]
    path = plot_accuracy_vs_tokens(
        summarize(records, ["direct", "cot", "sc"]), tmp_path / "plot.png", "title"
    )
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# Exact two-sided binomial tests: the chance under Binomial(b + c, 1/2) of a split at least
# as far from even as the one seen (summed outcome by outcome, not by the doubled tail).
MCNEMAR = [
    ((0, 0), 1.0),  # no disagreement: no evidence either way
    ((3, 3), 1.0),
    ((5, 0), 0.0625),  # 2 / 2**5
    ((0, 5), 0.0625),
    ((6, 1), 0.125),
    ((29, 16), 0.072454),
    ((22, 25), 0.770867),
]


@pytest.mark.parametrize(("split", "p"), MCNEMAR)
def test_exact_mcnemar_known_values(split, p) -> None:
    assert exact_mcnemar(*split) == pytest.approx(p, abs=1e-6)


def test_paired_comparison_counts_only_the_items_both_modes_answered() -> None:
    outcomes = {
        "cot": {"a": True, "b": True, "c": False, "d": False, "e": True},
        "chain": {"a": True, "b": False, "c": True, "d": False},  # "e" still running
        "direct": {"a": False},
    }
    records = [
        rec(mode, right, 10, id=item)
        for mode, items in outcomes.items()
        for item, right in items.items()
    ]
    direct, chain = paired_comparisons(records, ["direct", "cot", "chain"], "cot")
    assert (chain.mode, chain.items, chain.both, chain.only_mode, chain.only_baseline) == (
        "chain",
        4,
        1,
        1,
        1,
    )
    assert chain.neither == 1 and chain.difference == 0.0 and chain.p_value == 1.0
    assert (direct.items, direct.only_baseline, direct.difference) == (1, 1, -1.0)
    # Nothing to compare against without the baseline's records.
    assert paired_comparisons(records, ["chain", "sc"], "sc") == []


def test_the_baseline_is_cot_when_it_was_run() -> None:
    assert paired_baseline(["direct", "cot", "chain"]) == "cot"
    assert paired_baseline(["chain:iterative", "chain:single-pass"]) == "chain:iterative"
    assert paired_baseline(["chain"]) is None


def test_verification_effects_count_each_direction_of_a_revision() -> None:
    def checked(item: str, correct: bool, before: str | None, **extra) -> Record:
        extra = {"revised": before is not None, **extra}
        if before is not None and not extra.pop("old_row", False):
            extra["answer_before_check"] = before
        return rec("chain+verify", correct, 10, id=item, extra=extra)

    records = [
        checked("kept", True, None),
        checked("fixed", True, "It is **2**."),  # gold is 1 in rec()
        checked("broken", False, "Answer: 1"),
        checked("still wrong", False, "Answer: 3"),
        checked("unreadable before", True, "I do not know"),
        checked("old row", False, "Answer: 1", old_row=True),
        checked("old row put right", True, "Answer: 3", old_row=True),
        rec("chain", False, 10, id="fixed"),  # not a verify mode: left out
    ]
    (effect,) = verification_effects(records, ["chain", "chain+verify"])
    assert (effect.chains, effect.revised) == (7, 6)
    # Revised to the right answer, the old row's answer before must have been wrong.
    assert (effect.fixed, effect.broken, effect.wrong_to_wrong, effect.unknown) == (3, 1, 1, 1)
    table = markdown_report(
        summarize(records, ["chain+verify"]), ReportInfo("d", "m"), verification=[effect]
    )
    assert "| chain+verify | 7 | 6 | 3 | 1 | 1 | 1 |" in table and "before unknown" in table


def test_self_consistency_accuracy_is_grouped_by_how_far_the_samples_agreed() -> None:
    def sc(item: str, correct: bool, answers: list[str | None]) -> Record:
        return rec("sc", correct, 10, id=item, extra={"sample_answers": answers})

    records = [
        sc("unanimous", True, ["Answer: 1", "1", "**1**"]),  # gold is 1 in rec()
        sc("unanimous but wrong", False, ["2", "2", "2"]),
        sc("narrow", False, ["2", "2", "1", "2", "1"]),
        sc("tie, first seen wins", True, ["1", "2", "1", "3", "2"]),
        sc("one unreadable", True, ["1", None, "1", "1"]),
        rec("chain", True, 10, id="unanimous"),  # not self-consistency: left out
    ]
    groups = vote_agreement(records, ["chain", "sc"])
    assert [(g.votes, g.samples, g.items, g.correct) for g in groups] == [
        (3, 3, 2, 1),
        (3, 4, 1, 1),
        (3, 5, 1, 0),
        (2, 5, 1, 1),
    ]
    table = markdown_report(summarize(records, ["sc"]), ReportInfo("d", "m"), agreement=groups)
    assert "## How far the samples agreed" in table
    assert "| sc | 3 of 3 | 2 | 1 | 50.0 % (" in table
    # Without self-consistency there is no such section.
    plain = markdown_report(summarize(records, ["chain"]), ReportInfo("d", "m"))
    assert "samples agreed" not in plain
