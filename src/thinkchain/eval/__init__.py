"""The evaluation harness: datasets, modes, a resumable runner, and the summary it writes.

    thinkchain eval --dataset letters --modes direct,cot,chain,sc --n 200 --out results/letters

See :mod:`thinkchain.eval.runner` for the output folder and :mod:`thinkchain.eval.modes` for
the modes.
"""

from __future__ import annotations

from thinkchain.eval.datasets import Dataset, DatasetError, load_dataset
from thinkchain.eval.items import Item
from thinkchain.eval.modes import EvalMode, parse_mode, parse_modes
from thinkchain.eval.records import Record, ResultsFile
from thinkchain.eval.runner import EvalError, Evaluation
from thinkchain.eval.solve import SolveConfig, solve
from thinkchain.eval.stats import ModeSummary, summarize, wilson_interval

__all__ = [
    "Dataset",
    "DatasetError",
    "EvalError",
    "EvalMode",
    "Evaluation",
    "Item",
    "ModeSummary",
    "Record",
    "ResultsFile",
    "SolveConfig",
    "load_dataset",
    "parse_mode",
    "parse_modes",
    "solve",
    "summarize",
    "wilson_interval",
]
