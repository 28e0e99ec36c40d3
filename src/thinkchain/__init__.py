"""thinkchain: make an instruct model reason in visible steps before it answers."""

from __future__ import annotations

from .cancel import CancelToken
from .chain import Chain
from .events import (
    AnswerDelta,
    AnswerDone,
    AnswerStarted,
    ChainCompleted,
    ChainError,
    ChainEvent,
    ChainFailed,
    ChainResult,
    ChainStarted,
    CodeDone,
    CodeRun,
    CodeStarted,
    CutOutput,
    FinalAnswer,
    Retry,
    Step,
    StepDelta,
    StepDiscarded,
    StepDone,
    StepStarted,
    Usage,
)
from .questions import InvalidQuestion
from .settings import ChainSettings

__version__ = "0.1.0"

__all__ = [
    "AnswerDelta",
    "AnswerDone",
    "AnswerStarted",
    "CancelToken",
    "Chain",
    "ChainCompleted",
    "ChainError",
    "ChainEvent",
    "ChainFailed",
    "ChainResult",
    "ChainSettings",
    "ChainStarted",
    "CodeDone",
    "CodeRun",
    "CodeStarted",
    "CutOutput",
    "FinalAnswer",
    "InvalidQuestion",
    "Retry",
    "Step",
    "StepDelta",
    "StepDiscarded",
    "StepDone",
    "StepStarted",
    "Usage",
]
