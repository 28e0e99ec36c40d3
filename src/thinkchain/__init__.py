"""thinkchain: make an instruct model reason in visible steps before it answers.

The public API: a chain (``Chain``) or a strategy's run (``make_run``), their settings, the
events they emit and the view every consumer folds them into; a backend from a
``BackendConfig``.  Inside, ``thinkchain.chain`` is the chain itself, ``thinkchain.models``
where tokens come from, ``thinkchain.sandbox`` where model-written code runs, and ``cli``,
``ui``, ``proxy``, ``eval`` and ``history`` are the faces that use them.
"""

from __future__ import annotations

from thinkchain.chain.cancel import CancelToken
from thinkchain.chain.events import (
    AnswerDelta,
    AnswerDone,
    AnswerStarted,
    ChainCompleted,
    ChainError,
    ChainEvent,
    ChainFailed,
    ChainRead,
    ChainResult,
    ChainStarted,
    CodeDone,
    CodeRun,
    CodeStarted,
    CodeWritten,
    CutOutput,
    Decided,
    Decision,
    FinalAnswer,
    InChain,
    Retry,
    RunEvent,
    RunStarted,
    Step,
    StepDelta,
    StepDiscarded,
    StepDone,
    StepStarted,
    Usage,
)
from thinkchain.chain.loop import Chain
from thinkchain.chain.questions import InvalidQuestion
from thinkchain.chain.run_view import RunView
from thinkchain.chain.settings import ChainSettings, StrategySettings
from thinkchain.chain.strategies import BothWays, SelfConsistency, make_run
from thinkchain.chain.view import ChainView
from thinkchain.models.backends.factory import BackendConfig, make_backend

__version__ = "0.1.0"

__all__ = [
    "AnswerDelta",
    "AnswerDone",
    "AnswerStarted",
    "BackendConfig",
    "BothWays",
    "CancelToken",
    "Chain",
    "ChainCompleted",
    "ChainError",
    "ChainEvent",
    "ChainFailed",
    "ChainRead",
    "ChainResult",
    "ChainSettings",
    "ChainStarted",
    "ChainView",
    "CodeDone",
    "CodeRun",
    "CodeStarted",
    "CodeWritten",
    "CutOutput",
    "Decided",
    "Decision",
    "FinalAnswer",
    "InChain",
    "InvalidQuestion",
    "Retry",
    "RunEvent",
    "RunStarted",
    "RunView",
    "SelfConsistency",
    "Step",
    "StepDelta",
    "StepDiscarded",
    "StepDone",
    "StepStarted",
    "StrategySettings",
    "Usage",
    "make_backend",
    "make_run",
]
