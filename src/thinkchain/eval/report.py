"""The summary of a run as people read it: a terminal table and a Markdown file."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from rich.table import Table

from thinkchain.eval.stats import (
    AgreementGroup,
    ModeSummary,
    PairedComparison,
    VerificationEffect,
    wilson_interval,
)

COLUMNS = (
    "mode",
    "items",
    "accuracy (95 % CI)",
    "mean steps",
    "generated tokens / item",
    "prompt tokens / item",
    "s / item",
    "correct / 1k generated tokens",
    "loops cut",
    "errors",
)


@dataclass
class ReportInfo:
    """What the numbers are about: shown above the table."""

    dataset: str
    model: str
    command: str = ""
    date: str = ""
    notes: list[str] = field(default_factory=list)


def percent(x: float) -> str:
    return f"{100 * x:.1f} %"


def per_1k(value: float | None) -> str:
    """Three significant figures: sc's 0.00812 matters as much as direct's 167."""
    return "–" if value is None else f"{value:.3g}"


def accuracy_cell(accuracy: float, low: float, high: float) -> str:
    """The share right and its 95 % interval, "79.0 % (72.8–84.1)", alike in every table."""
    return f"{percent(accuracy)} ({100 * low:.1f}–{100 * high:.1f})"


def _row(s: ModeSummary) -> list[str]:
    return [
        s.mode,
        str(s.items),
        accuracy_cell(s.accuracy, s.low, s.high),
        f"{s.mean_steps:.1f}",
        f"{s.mean_completion_tokens:,.0f}",
        f"{s.mean_prompt_tokens:,.0f}",
        f"{s.seconds_per_item:.1f}",
        per_1k(s.correct_per_1k_tokens),
        str(s.cut),
        str(s.errors),
    ]


def markdown_table(summaries: Sequence[ModeSummary]) -> str:
    lines = [
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "|".join("---" if i == 0 else "---:" for i in range(len(COLUMNS))) + "|",
    ]
    lines += ["| " + " | ".join(_row(s)) + " |" for s in summaries]
    return "\n".join(lines) + "\n"


def level_table(levels: dict[str, dict[str, tuple[int, int]]], modes: Sequence[str]) -> str:
    """Accuracy per difficulty level and mode, as Markdown."""
    shown = [m for m in modes if any(m in row for row in levels.values())]
    lines = [
        "| level | " + " | ".join(shown) + " |",
        "|---|" + "---:|" * len(shown),
    ]
    for level in sorted(levels):
        cells = []
        for mode in shown:
            correct, items = levels[level].get(mode, (0, 0))
            cells.append(f"{correct}/{items}" if items else "–")
        lines.append(f"| {level} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def p_value(p: float) -> str:
    return "< 0.001" if p < 0.001 else f"{p:.3f}" if p < 0.01 else f"{p:.2f}"


def paired_table(comparisons: Sequence[PairedComparison]) -> str:
    """Each mode against the baseline on the items both answered, as Markdown."""
    baseline = comparisons[0].baseline
    lines = [
        f"| mode | items | right in both | only this mode | only `{baseline}` | neither "
        "| difference | exact McNemar p |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c in comparisons:
        lines.append(
            f"| {c.mode} | {c.items} | {c.both} | {c.only_mode} | {c.only_baseline} | "
            f"{c.neither} | {100 * c.difference:+.1f} points | {p_value(c.p_value)} |"
        )
    return "\n".join(lines) + "\n"


def verification_table(effects: Sequence[VerificationEffect]) -> str:
    """What each ``+verify`` mode's check did to the answers, as Markdown, with what it means
    (the "before unknown" column and its explanation appear together, only when needed)."""
    unknown = any(e.unknown for e in effects)
    head = "| mode | chains checked | revised | wrong → right | right → wrong | wrong → wrong |"
    rule = "|---|---:|---:|---:|---:|---:|"
    if unknown:
        head += " before unknown |"
        rule += "---:|"
    lines = [head, rule]
    for e in effects:
        cells = [e.mode, e.chains, e.revised, e.fixed, e.broken, e.wrong_to_wrong]
        if unknown:
            cells.append(e.unknown)
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    meaning = (
        "A check that reaches another result replaces the answer; it pays only if it turns "
        "more wrong answers right than right ones wrong."
    )
    if any(e.per_sample for e in effects):
        meaning += (
            " Under self-consistency each sample is a chain with its own check, counted here "
            "on its own, before the vote."
        )
    if unknown:
        meaning += (
            " Before unknown: revised to a wrong answer in a row written before rows kept the "
            "answer the check replaced."
        )
    return "\n".join(lines) + "\n\n" + meaning + "\n"


def agreement_table(groups: Sequence[AgreementGroup]) -> str:
    """Self-consistency's accuracy by how far its samples agreed, as Markdown."""
    lines = [
        "| mode | samples giving the winning answer | items | right | accuracy (95 % CI) |",
        "|---|---:|---:|---:|---:|",
    ]
    for g in groups:
        low, high = wilson_interval(g.correct, g.items)
        lines.append(
            f"| {g.mode} | {g.votes} of {g.samples} | {g.items} | {g.correct} | "
            f"{accuracy_cell(g.accuracy, low, high)} |"
        )
    return "\n".join(lines) + "\n"


def markdown_report(
    summaries: Sequence[ModeSummary],
    info: ReportInfo,
    *,
    levels: dict[str, dict[str, tuple[int, int]]] | None = None,
    paired: Sequence[PairedComparison] = (),
    verification: Sequence[VerificationEffect] = (),
    agreement: Sequence[AgreementGroup] = (),
    plot_file: str | None = None,
) -> str:
    parts = [f"# Evaluation: {info.dataset}\n"]
    facts = [f"- model: {info.model}"]
    if info.date:
        facts.append(f"- date: {info.date}")
    if info.command:
        facts.append(f"- command: `{info.command}`")
    facts += [f"- {note}" for note in info.notes]
    parts.append("\n".join(facts) + "\n")
    parts.append(markdown_table(summaries))
    parts.append(
        "Accuracy is the share of items answered correctly, with its 95 % Wilson interval; a "
        "failed chain counts as incorrect (errors). Tokens and seconds are means per item, "
        "every call of the item together (for sc: all K samples; steps too).\n"
    )
    if paired:
        parts.append(
            f"## Paired against `{paired[0].baseline}`\n\n"
            + paired_table(paired)
            + "\nItem by item, on the items both modes answered. Only the items where the two "
            "disagree tell them apart; the p-value is the chance of a split at least this "
            "lopsided if neither mode were better (two-sided).\n"
        )
    if verification:
        parts.append("## What verification changed\n\n" + verification_table(verification))
    if agreement:
        parts.append(
            "## How far the samples agreed\n\n"
            + agreement_table(agreement)
            + "\nSelf-consistency items grouped by how many of the samples started gave the "
            "answer the vote chose. Early stopping ends an item once the vote is decided: "
            '"3 of 3" means the first three samples agreed and no more started, and a sample '
            "cancelled halfway counts as started, without an answer. How often the winner is "
            "right at each level says how far the agreement can be trusted.\n"
        )
    if levels:
        parts.append("## Accuracy by level\n\n" + level_table(levels, [s.mode for s in summaries]))
    if plot_file:
        parts.append(f"![accuracy against generated tokens per item]({plot_file})\n")
    return "\n".join(parts)


# Fewer and shorter columns than the Markdown table, to fit an 80-column terminal.
SHORT_COLUMNS = ("mode", "n", "acc", "95% CI", "steps", "tok", "s/item", "✓/1k tok", "err")


def rich_table(summaries: Sequence[ModeSummary], title: str | None = None) -> Table:
    table = Table(
        title=title,
        caption="tok = generated tokens per item; ✓/1k tok = correct per 1,000",
        show_edge=False,
        header_style="bold",
        pad_edge=False,
    )
    for i, column in enumerate(SHORT_COLUMNS):
        if i == 0:  # a long mode name folds onto two lines rather than cutting a number
            table.add_column(column, overflow="fold")
        else:
            table.add_column(column, justify="right", no_wrap=True)
    for s in summaries:
        table.add_row(
            s.mode,
            str(s.items),
            f"{100 * s.accuracy:.1f}%",
            f"{100 * s.low:.0f}–{100 * s.high:.0f}",
            f"{s.mean_steps:.1f}",
            f"{s.mean_completion_tokens:,.0f}",
            f"{s.seconds_per_item:.1f}",
            per_1k(s.correct_per_1k_tokens),
            str(s.errors),
        )
    return table
