"""Typed events that flow one way, from the chain loop to its consumers.

Consumers (terminal, web page, proxy, history, eval) only ever read these objects; they never
see prompts, retries or backends.  Every chain emits exactly one terminal event
(:class:`ChainCompleted` or :class:`ChainFailed`) and nothing after it.  The results the
events carry live in :mod:`thinkchain.chain.results`; they are importable from here as well.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from thinkchain.chain.results import (
    CUT_TEXT_CHARS,
    ChainError,
    ChainResult,
    CodeRun,
    CutOutput,
    Decision,
    ErrorKind,
    FinalAnswer,
    NextAction,
    Step,
    Usage,
)


@dataclass(frozen=True, slots=True)
class Event:
    type: ClassVar[str] = "event"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = value.to_dict() if hasattr(value, "to_dict") else value
        return out


@dataclass(frozen=True, slots=True)
class ChainStarted(Event):
    type: ClassVar[str] = "chain_started"
    question: str
    lang: str
    model: str
    mode: str


@dataclass(frozen=True, slots=True)
class StepStarted(Event):
    type: ClassVar[str] = "step_started"
    index: int


@dataclass(frozen=True, slots=True)
class StepDelta(Event):
    """New text of the step being generated: its title or its content, as it streams."""

    type: ClassVar[str] = "step_delta"
    index: int
    field: Literal["title", "content"]
    text: str


@dataclass(frozen=True, slots=True)
class CodeWritten(Event):
    """The step's text now holds a closed Python block that will run: it ends ``end``
    characters into the step's content as streamed (its deltas joined).  The block runs at
    once (single-pass, verification) or when the step is finished (iterative shapes)."""

    type: ClassVar[str] = "code_written"
    index: int
    code: str
    end: int


@dataclass(frozen=True, slots=True)
class CodeStarted(Event):
    """The step's Python block is running in the sandbox (the code is already in the content)."""

    type: ClassVar[str] = "code_started"
    index: int
    code: str


@dataclass(frozen=True, slots=True)
class CodeDone(Event):
    """The step's Python block finished: its output, or the error the model will see."""

    type: ClassVar[str] = "code_done"
    index: int
    run: CodeRun


@dataclass(frozen=True, slots=True)
class Retry(Event):
    """An attempt was thrown away; the step (or the answer) starts again from empty text."""

    type: ClassVar[str] = "retry"
    target: Literal["step", "answer"]
    index: int  # the step's index; 0 for the final answer
    attempt: int  # the attempt that failed, 1-based
    reason: str


@dataclass(frozen=True, slots=True)
class StepDiscarded(Event):
    """The step being generated is dropped for good (it repeated an earlier step, say)."""

    type: ClassVar[str] = "step_discarded"
    index: int
    reason: str


@dataclass(frozen=True, slots=True)
class StepDone(Event):
    type: ClassVar[str] = "step_done"
    step: Step


@dataclass(frozen=True, slots=True)
class AnswerStarted(Event):
    type: ClassVar[str] = "answer_started"


@dataclass(frozen=True, slots=True)
class AnswerDelta(Event):
    type: ClassVar[str] = "answer_delta"
    text: str


@dataclass(frozen=True, slots=True)
class AnswerDone(Event):
    type: ClassVar[str] = "answer_done"
    answer: FinalAnswer


@dataclass(frozen=True, slots=True)
class ChainCompleted(Event):
    """Terminal: the chain produced its final answer."""

    type: ClassVar[str] = "chain_completed"
    result: ChainResult


@dataclass(frozen=True, slots=True)
class ChainFailed(Event):
    """Terminal: the chain ended without an answer; ``result`` keeps every finished step."""

    type: ClassVar[str] = "chain_failed"
    error: ChainError
    result: ChainResult


# -- a run of several chains (a strategy) -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunStarted(Event):
    """A run of several chains begins: the strategy, and how many chains it may start."""

    type: ClassVar[str] = "run_started"
    question: str
    strategy: str
    chains: int


@dataclass(frozen=True, slots=True)
class InChain(Event):
    """An event of chain ``chain`` (0-based) of a run, as that chain emitted it."""

    type: ClassVar[str] = "in_chain"
    chain: int
    event: ChainEvent


@dataclass(frozen=True, slots=True)
class ChainRead(Event):
    """A chain of the run ended and the strategy read its answer: ``answer`` normalised (None:
    nothing readable).  ``role`` is what the chain is in the run ("sample", ...)."""

    type: ClassVar[str] = "chain_read"
    chain: int
    role: str
    answer: str | None
    result: ChainResult


@dataclass(frozen=True, slots=True)
class Decided(Event):
    """The strategy decided; the run's terminal event follows, with the chosen chain's result."""

    type: ClassVar[str] = "decided"
    decision: Decision


TerminalEvent = ChainCompleted | ChainFailed
ChainEvent = (
    ChainStarted
    | StepStarted
    | StepDelta
    | CodeWritten
    | CodeStarted
    | CodeDone
    | Retry
    | StepDiscarded
    | StepDone
    | AnswerStarted
    | AnswerDelta
    | AnswerDone
    | ChainCompleted
    | ChainFailed
)


# What a run emits: a single chain's events, or a strategy's (each chain's events wrapped in
# InChain, its reads and decision), ending in one ChainCompleted or ChainFailed either way.
RunEvent = ChainEvent | RunStarted | InChain | ChainRead | Decided


def is_terminal(event: Event) -> bool:
    return isinstance(event, (ChainCompleted, ChainFailed))


__all__ = [
    "CUT_TEXT_CHARS",
    "AnswerDelta",
    "AnswerDone",
    "AnswerStarted",
    "ChainCompleted",
    "ChainError",
    "ChainEvent",
    "ChainFailed",
    "ChainRead",
    "ChainResult",
    "ChainStarted",
    "CodeDone",
    "CodeRun",
    "CodeStarted",
    "CodeWritten",
    "CutOutput",
    "Decided",
    "Decision",
    "ErrorKind",
    "Event",
    "FinalAnswer",
    "InChain",
    "NextAction",
    "Retry",
    "RunEvent",
    "RunStarted",
    "Step",
    "StepDelta",
    "StepDiscarded",
    "StepDone",
    "StepStarted",
    "TerminalEvent",
    "Usage",
    "is_terminal",
]
