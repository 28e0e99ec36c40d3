"""Run an evaluation: every (item, mode) pair, some at once, each result kept as it lands.

The output folder holds ``run.json`` (what the answers depend on: dataset, model, settings),
``results.jsonl`` (one line per finished item, appended and synced at once), and after the
run ``summary.md`` and ``accuracy_vs_tokens.png``.  ``resume=True`` skips the pairs already in
``results.jsonl``; a resumed run must use the same model and settings, or its numbers would
mix two setups, so a mismatch is refused.

Concurrency: ``concurrency`` items run at once (each sc item runs its K chains at once too),
which is what a batching HTTP server wants.  A backend whose capabilities say it decodes one
sequence at a time gets one item at a time: interleaving chains there only evicts each other's
prompt from the KV cache.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from thinkchain.chain._bridge import background_loop
from thinkchain.chain.answers import normalise_gold
from thinkchain.chain.backend import Backend
from thinkchain.chain.voting import runs_in_parallel
from thinkchain.eval.datasets import Dataset
from thinkchain.eval.items import Item
from thinkchain.eval.modes import EvalMode
from thinkchain.eval.plot import PlotUnavailable, plot_accuracy_vs_tokens
from thinkchain.eval.records import Record, ResultsFile
from thinkchain.eval.report import ReportInfo, markdown_report
from thinkchain.eval.solve import SolveConfig, rescore, solve
from thinkchain.eval.stats import (
    ModeSummary,
    PairedComparison,
    accuracy_by_level,
    paired_baseline,
    paired_comparisons,
    summarize,
    verification_effects,
    vote_agreement,
)

RESULTS_FILE = "results.jsonl"
MANIFEST_FILE = "run.json"
SUMMARY_FILE = "summary.md"
PLOT_FILE = "accuracy_vs_tokens.png"


class EvalError(ValueError):
    """The run cannot start as asked; the message says why and what to do."""


@dataclass
class Written:
    summaries: list[ModeSummary]
    summary_path: Path
    plot_path: Path | None  # None when matplotlib is missing
    plot_problem: str | None = None
    paired: list[PairedComparison] = field(default_factory=list)


class Evaluation:
    def __init__(
        self,
        dataset: Dataset,
        modes: list[EvalMode],
        backend: Backend,
        config: SolveConfig,
        out_dir: Path,
        *,
        concurrency: int = 4,
        resume: bool = False,
        retry_errors: bool = False,
    ) -> None:
        if concurrency < 1:
            raise EvalError("--concurrency must be at least 1")
        self.dataset = dataset
        self.modes = modes
        self.backend = backend
        self.config = config
        self.out_dir = out_dir
        self.requested_concurrency = concurrency
        self.resume = resume
        self.retry_errors = retry_errors
        self.results = ResultsFile(out_dir / RESULTS_FILE)
        self.damaged_lines = 0
        self._done: dict[tuple[str, str], Record] = {}
        self._prepared = False

    # -- before the run -----------------------------------------------------------------------

    @property
    def concurrency(self) -> int:
        return self.requested_concurrency if runs_in_parallel(self.backend) else 1

    def manifest(self) -> dict[str, Any]:
        """What the answers depend on; sc's options only once an sc mode has run."""
        described = self.config.describe()
        if all(mode.strategy == "chain" for mode in self.modes):
            described = {"settings": described["settings"]}
        return {"dataset": self.dataset.name, "model": self.backend.model, **described}

    def prepare(self) -> list[tuple[Item, EvalMode]]:
        """Check the output folder and return the (item, mode) pairs still to run."""
        manifest_path = self.out_dir / MANIFEST_FILE
        if self.results.exists() and not self.resume:
            raise EvalError(
                f"{self.out_dir} already holds results: add --resume to continue that run, "
                "or choose another --out"
            )
        stored: dict[str, Any] = {}
        if manifest_path.is_file() and self.results.exists():
            stored = json.loads(manifest_path.read_text(encoding="utf-8"))
            self._check_same_setup(stored)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        # Options that start to matter now (sc's k when sc joins a run) are kept from here on.
        manifest = {"created": _now(), **stored, **self.manifest()}
        manifest_path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        loaded = self.results.load()
        self._done, self.damaged_lines = loaded.records, loaded.damaged_lines
        self._prepared = True
        return self.pending()

    def _check_same_setup(self, stored: dict[str, Any]) -> None:
        changed = _differences(stored, self.manifest())
        if changed:
            details = "; ".join(changed[:4])
            raise EvalError(
                f"{self.out_dir} holds results of another setup ({details}); resume with the "
                "same options, or choose another --out"
            )

    def pending(self) -> list[tuple[Item, EvalMode]]:
        todo = []
        # Item by item, every mode of an item together: the running accuracies of the modes
        # compare the same questions at any moment, and an interrupted run stays balanced.
        for item in self.dataset.items:
            for mode in self.modes:
                done = self._done.get((item.id, mode.name))
                if done is None or (self.retry_errors and done.error is not None):
                    todo.append((item, mode))
        return todo

    def finished(self) -> list[Record]:
        """Records of this run's items and modes found in the results file, in item order."""
        by_key = self.results.load().records
        out = []
        for item in self.dataset.items:
            for mode in self.modes:
                record = by_key.get((item.id, mode.name))
                if record is not None:
                    out.append(record)
        return out

    # -- the run ------------------------------------------------------------------------------

    async def arun(self, on_record: Callable[[Record], None] | None = None) -> list[Record]:
        """Run what is pending; each record is written before ``on_record`` sees it."""
        todo = self.pending() if self._prepared else self.prepare()
        queue: asyncio.Queue[tuple[Item, EvalMode]] = asyncio.Queue()
        for pair in todo:
            queue.put_nowait(pair)
        new: list[Record] = []

        async def worker() -> None:
            while not queue.empty():
                item, mode = queue.get_nowait()
                record = await self._solve(item, mode)
                self.results.append(record)
                self._done[record.key] = record
                new.append(record)
                if on_record is not None:
                    on_record(record)

        workers = [asyncio.create_task(worker()) for _ in range(min(self.concurrency, len(todo)))]
        try:
            await asyncio.gather(*workers)
        finally:
            # Interrupted (Ctrl-C) or failed: stop the other workers; what is in flight is
            # lost, what finished is already on disk.
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            self.results.close()
        return new

    def run(self, on_record: Callable[[Record], None] | None = None) -> list[Record]:
        """:meth:`arun` for synchronous callers, on thinkchain's shared event loop.

        The shared loop is where HTTP connection pools live (they cannot outlive their loop).
        Ctrl-C in the caller's thread cancels the run, waits until the items in flight have
        stopped (so the results file is closed), and raises KeyboardInterrupt again.
        """
        loop = background_loop()
        stopped = threading.Event()
        task_box: list[asyncio.Task[list[Record]]] = []

        async def main() -> list[Record]:
            task = asyncio.ensure_future(self.arun(on_record))
            task_box.append(task)
            try:
                return await task
            finally:
                stopped.set()

        future = asyncio.run_coroutine_threadsafe(main(), loop)
        try:
            return future.result()
        except KeyboardInterrupt:
            if task_box:
                loop.call_soon_threadsafe(task_box[0].cancel)
            stopped.wait(timeout=60)
            raise

    async def _solve(self, item: Item, mode: EvalMode) -> Record:
        try:
            return await solve(self.backend, self.config, mode, item)
        except asyncio.CancelledError:
            raise
        except Exception as err:  # a bug: keep the run going, and keep the item as an error
            return Record(
                id=item.id,
                mode=mode.name,
                gold=normalise_gold(item.answer),
                prediction=None,
                correct=False,
                error="exception",
                error_message=f"{type(err).__name__}: {err}",
                level=item.level,
            )

    # -- after the run ------------------------------------------------------------------------

    def summaries(self, *, rescore_answers: bool = False) -> tuple[list[ModeSummary], list[Record]]:
        records = self.finished()
        if rescore_answers:
            records = [rescore(r) for r in records]
        return summarize(records, [m.name for m in self.modes]), records

    def write_summary(self, info: ReportInfo, *, rescore_answers: bool = False) -> Written:
        summaries, records = self.summaries(rescore_answers=rescore_answers)
        names = [m.name for m in self.modes]
        levels = accuracy_by_level(records, names)
        baseline = paired_baseline(names)
        paired = paired_comparisons(records, names, baseline) if baseline else []
        plot_path: Path | None = self.out_dir / PLOT_FILE
        problem = None
        try:
            title = f"{info.dataset} · {info.model}"
            plot_accuracy_vs_tokens(summaries, plot_path, title)  # type: ignore[arg-type]
        except PlotUnavailable as err:
            plot_path, problem = None, str(err)
        text = markdown_report(
            summaries,
            info,
            levels=levels if len(levels) > 1 else None,
            paired=paired,
            verification=verification_effects(records, names),
            agreement=vote_agreement(records, names),
            plot_file=PLOT_FILE if plot_path else None,
        )
        summary_path = self.out_dir / SUMMARY_FILE
        summary_path.write_text(text, encoding="utf-8")
        return Written(summaries, summary_path, plot_path, problem, paired)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _differences(stored: dict[str, Any], current: dict[str, Any], prefix: str = "") -> list[str]:
    """``"settings.temperature: 0.2 then, 0.5 now"`` for each key whose value changed."""
    out = []
    for key, now in current.items():
        if key not in stored or key == "created":
            continue
        then = stored[key]
        if isinstance(then, dict) and isinstance(now, dict):
            out += _differences(then, now, f"{prefix}{key}.")
        elif then != now:
            out.append(f"{prefix}{key}: {then} then, {now} now")
    return out
