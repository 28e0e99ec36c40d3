"""``thinkchain eval``: measure accuracy and cost of each mode on a dataset."""

from __future__ import annotations

import shlex
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, cast

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)

from thinkchain.chain.settings import (
    MODES,
    SAMPLE_TEMPERATURE,
    ChainSettings,
    EarlyStop,
    StrategySettings,
)
from thinkchain.chain.strategies import chains_at_once
from thinkchain.cli.options import (
    CHAIN_DEFAULTS,
    STRATEGY_DEFAULTS,
    ApiKeyOpt,
    BaseUrlOpt,
    LangOpt,
    MaxStepsOpt,
    MaxTokensOpt,
    MinStepsOpt,
    ModelOpt,
    ModelPathOpt,
    TemperatureOpt,
    backend_from_options,
    clear_errors,
    err_console,
    fail,
)
from thinkchain.eval.datasets import load_dataset
from thinkchain.eval.modes import parse_modes
from thinkchain.eval.records import Record
from thinkchain.eval.report import ReportInfo, p_value, rich_table
from thinkchain.eval.runner import Evaluation
from thinkchain.eval.solve import SolveConfig


class RunningScore:
    """Correct / done per mode, shown next to the progress bar."""

    def __init__(self, modes: list[str]) -> None:
        self.modes = modes
        self.correct = dict.fromkeys(modes, 0)
        self.done = dict.fromkeys(modes, 0)
        self.errors = 0

    def add(self, record: Record) -> None:
        if record.mode in self.done:
            self.done[record.mode] += 1
            self.correct[record.mode] += int(record.correct)
        self.errors += int(record.error is not None)

    def text(self, markup: bool = True) -> str:
        parts = []
        for mode in self.modes:
            done = self.done[mode]
            share = f"{100 * self.correct[mode] / done:.0f}%" if done else "–"
            parts.append(f"{mode} {share}")
        if self.errors:
            parts.append(f"[red]{self.errors} err[/]" if markup else f"{self.errors} err")
        return " ".join(parts)


def evaluate(
    ctx: typer.Context,
    dataset: Annotated[
        str,
        typer.Option(
            "--dataset",
            help="A JSONL file of {id, question, answer[, before]}; `letters` or "
            "`letters:LEVEL` (generated letter counting); `followups` or `followups:standalone` "
            "(follow-up questions after a first one, or standing alone); `gsm8k` (Hugging Face "
            "`datasets`, online).",
        ),
    ],
    modes: Annotated[
        str,
        typer.Option(
            help="Comma-separated: direct, cot, chain, chain:MODE, sc, sc:MODE; MODE+verify adds "
            "the verification phase (e.g. chain+verify)."
        ),
    ] = "direct,cot,chain",
    n: Annotated[
        int | None, typer.Option("--n", help="The first N items (letters: default 200).")
    ] = None,
    skip: Annotated[
        int,
        typer.Option("--skip", help="Leave out the first K items (--skip 200 --n 200: 201-400)."),
    ] = 0,
    out: Annotated[
        Path | None,
        typer.Option(help="Output folder (default: results/DATASET)."),
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue a run in --out, skipping finished items.")
    ] = False,
    retry_errors: Annotated[
        bool, typer.Option("--retry-errors", help="With --resume: run failed items again.")
    ] = False,
    concurrency: Annotated[
        int, typer.Option(help="Items at once (the embedded model decodes them side by side).")
    ] = 4,
    k: Annotated[
        int, typer.Option("--k", help="Samples of self-consistency (sc).")
    ] = STRATEGY_DEFAULTS.k,
    sc_temperature: Annotated[
        float, typer.Option(help="Sampling temperature of the sc samples.")
    ] = SAMPLE_TEMPERATURE,
    early_stop: Annotated[
        str,
        typer.Option(help="sc: stop once the vote is decided (decisive), agree, or off."),
    ] = STRATEGY_DEFAULTS.early_stop,
    agree_n: Annotated[
        int, typer.Option(help="sc with --early-stop agree: stop when the first N answers agree.")
    ] = STRATEGY_DEFAULTS.agree_n,
    seed: Annotated[int, typer.Option(help="Seed of the letters generator and sampling.")] = 0,
    rescore: Annotated[
        bool,
        typer.Option(
            "--rescore", help="Score the stored answer texts again with the current normaliser."
        ),
    ] = False,
    base_url: BaseUrlOpt = None,
    model: ModelOpt = None,
    api_key: ApiKeyOpt = None,
    model_path: ModelPathOpt = None,
    lang: LangOpt = CHAIN_DEFAULTS.lang,
    max_steps: MaxStepsOpt = CHAIN_DEFAULTS.max_steps,
    min_steps: MinStepsOpt = CHAIN_DEFAULTS.min_steps,
    temperature: TemperatureOpt = CHAIN_DEFAULTS.temperature,
    max_tokens: MaxTokensOpt = CHAIN_DEFAULTS.max_tokens_per_step,
    final_max_tokens: Annotated[
        int, typer.Option(help="Max tokens of the final answer (direct, cot: the whole reply).")
    ] = CHAIN_DEFAULTS.final_max_tokens,
    max_total_tokens: Annotated[
        int | None, typer.Option(help="Budget of generated tokens per chain.")
    ] = None,
    max_seconds: Annotated[float | None, typer.Option(help="Budget of seconds per chain.")] = None,
    timeout: Annotated[
        float, typer.Option(help="Seconds to wait for a server between two tokens.")
    ] = 120.0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Measure accuracy, tokens and time of each mode on a dataset; resumable."""
    with clear_errors():
        chosen = parse_modes(modes)
        if early_stop not in ("decisive", "agree", "off"):
            fail(f"--early-stop must be decisive, agree or off, not {early_stop!r}")
        if k < 1:
            fail("--k must be at least 1")
        if agree_n < 2:
            fail("--agree-n must be at least 2: one answer agrees with nothing")
        data = load_dataset(dataset, n=n, seed=seed, skip=skip)
        settings = ChainSettings(
            lang=lang,
            max_steps=max_steps,
            min_steps=min_steps,
            temperature=temperature,
            max_tokens_per_step=max_tokens,
            final_max_tokens=final_max_tokens,
            max_total_tokens=max_total_tokens,
            max_seconds=max_seconds,
            seed=seed,
        )
        config = SolveConfig(
            settings,
            StrategySettings(
                strategy="sc",
                k=k,
                temperature=sc_temperature,
                early_stop=cast(EarlyStop, early_stop),
                agree_n=agree_n,
            ),
        )
        out_dir = out or Path("results") / data.name
        # A strategy's item runs its chains side by side, so the embedded model gets a slot for
        # each of them (the factory caps the count where more stop paying).
        samples = max(
            chains_at_once(config.strategy.model_copy(update={"strategy": m.strategy}))
            for m in chosen
        )
        backend = backend_from_options(
            base_url,
            model,
            api_key,
            model_path,
            read_timeout=timeout,
            parallel=concurrency * samples,
        )
        evaluation = Evaluation(
            data,
            chosen,
            backend,
            config,
            out_dir,
            concurrency=concurrency,
            resume=resume,
            retry_errors=retry_errors,
        )
        todo = evaluation.prepare()
    if evaluation.damaged_lines:
        err_console.print(
            f"[yellow]{evaluation.damaged_lines} unreadable line(s) in the results file were "
            "skipped (an interrupted write); those items run again[/]",
            markup=True,
        )
    if evaluation.concurrency < concurrency and concurrency > 1 and todo:
        err_console.print(
            f"[dim]{backend.name} decodes one sequence at a time: items run one after another[/]",
            markup=True,
        )
    total = len(data.items) * len(chosen)
    err_console.print(
        f"{data.name}: {len(data.items)} items × {len(chosen)} modes on {backend.name}; "
        f"{total - len(todo)} done, {len(todo)} to run → {out_dir}",
        highlight=False,
    )
    chosen_names = [m.name for m in chosen]
    interrupted = _run_with_progress(evaluation, chosen_names, quiet)
    info = ReportInfo(
        dataset=f"{data.name} ({len(data.items)} items)",
        model=backend.model,
        command=_command_line(ctx),
        date=datetime.now(timezone.utc).strftime("%Y-%m-%d"),
        notes=_notes(evaluation, chosen_names, config),
    )
    written = evaluation.write_summary(info, rescore_answers=rescore)
    Console(highlight=False).print(rich_table(written.summaries, title=info.dataset))
    for c in written.paired:
        print(
            f"{c.mode} vs {c.baseline} on {c.items} items: {100 * c.difference:+.1f} points "
            f"({c.only_mode} right only by {c.mode}, {c.only_baseline} only by {c.baseline}; "
            f"exact McNemar p {p_value(c.p_value)})"
        )
    err_console.print(f"summary: {written.summary_path}", highlight=False)
    if written.plot_path:
        err_console.print(f"plot: {written.plot_path}", highlight=False)
    elif written.plot_problem:
        err_console.print(f"[yellow]no plot: {written.plot_problem}[/]", markup=True)
    if interrupted:
        err_console.print(
            "[yellow]interrupted: finished items are kept; run the same command with --resume "
            "to go on[/]",
            markup=True,
        )
        raise typer.Exit(130)


def _run_with_progress(evaluation: Evaluation, modes: list[str], quiet: bool) -> bool:
    """Run the evaluation with a progress bar; True when Ctrl-C stopped it."""
    score = RunningScore(modes)
    for record in evaluation.finished():
        score.add(record)
    total = len(evaluation.dataset.items) * len(modes)
    progress = Progress(
        BarColumn(bar_width=16),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[score]}"),
        console=err_console,
        disable=quiet or not err_console.is_terminal,
    )
    task = progress.add_task("eval", total=total, completed=sum(score.done.values()), score="")
    progress.update(task, score=score.text())

    # Without a terminal (a log file, nohup) the bar cannot redraw: one line per item instead.
    plain = not quiet and not err_console.is_terminal

    def on_record(record: Record) -> None:
        score.add(record)
        progress.update(task, advance=1, score=score.text())
        if plain:
            mark = "✓" if record.correct else ("error: " + record.error if record.error else "✗")
            err_console.print(
                f"[{sum(score.done.values())}/{total}] {record.id} {record.mode} {mark} "
                f"({record.prediction} vs {record.gold}, {record.seconds:.1f} s) · "
                + score.text(markup=False),
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
        if record.error == "exception":
            progress.console.print(
                f"[red]{record.id} {record.mode}: {record.error_message}[/]", markup=True
            )

    try:
        with progress:
            evaluation.run(on_record)
    except KeyboardInterrupt:
        return True
    return False


def _notes(evaluation: Evaluation, modes: list[str], config: SolveConfig) -> list[str]:
    s = config.settings
    notes = [
        f"backend: {evaluation.backend.name}; concurrency {evaluation.concurrency}",
        f"chain settings: temperature {s.temperature}, steps {s.min_steps}–{s.max_steps}, "
        f"{s.max_tokens_per_step} tokens per step, seed {s.seed}",
    ]
    strategies = sorted({m.split(":")[0].split("+")[0] for m in modes} - {"chain", *MODES})
    if strategies:
        plan = config.strategy
        notes.append(
            f"{', '.join(strategies)}: k {plan.k}, temperature {plan.temperature}, "
            f"early stop {plan.early_stop}"
            + (f" (first {plan.agree_n} agree)" if plan.early_stop == "agree" else "")
        )
    return notes


# Options that do not change the numbers (or must not be written down: the API key).
_NOT_IN_COMMAND = {"api_key", "quiet", "resume", "retry_errors", "rescore"}
_ALWAYS_IN_COMMAND = {"dataset", "modes"}  # what was measured: said even when a default


def _command_line(ctx: typer.Context) -> str:
    """The command that reproduces these numbers: every option that differs from its default.

    Rebuilt from the parsed options rather than copied from ``sys.argv``, so an API key given
    on the command line never lands in a summary meant to be published.
    """
    words = ["thinkchain", "eval"]
    for param in ctx.command.params:
        name = param.name or ""
        value = ctx.params.get(name)
        if name in _NOT_IN_COMMAND or value is None or value in ([], ()):
            continue
        if value == param.default and name not in _ALWAYS_IN_COMMAND:
            continue
        flag = param.opts[0]
        if isinstance(value, bool):
            words.append(flag)
        elif isinstance(value, (list, tuple)):
            words += [flag, ",".join(str(v) for v in value)]
        else:
            words += [flag, str(value)]
    return shlex.join(words)
