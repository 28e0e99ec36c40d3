"""A run as a person follows it: one chain, or a strategy's chains, its reads and decision."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from thinkchain.chain.events import (
    ChainCompleted,
    ChainError,
    ChainFailed,
    ChainRead,
    ChainResult,
    ChainStarted,
    Decided,
    Decision,
    Event,
    FinalAnswer,
    InChain,
    RunStarted,
)
from thinkchain.chain.view import ChainView


@dataclass
class RunView:
    """A run as a person follows it: its chains (one, or a strategy's), what the strategy read
    of each finished chain, its decision, and the result that stands for the run."""

    question: str = ""
    strategy: str = "chain"  # "chain" for a single chain
    size: int = 1  # chains it may start
    chains: list[ChainView] = field(default_factory=lambda: [ChainView()])
    reads: list[ChainRead] = field(default_factory=list)  # in the order chains ended
    decision: Decision | None = None
    result: ChainResult | None = None
    error: ChainError | None = None
    started: float = field(default_factory=time.monotonic)

    @property
    def several(self) -> bool:
        """Whether this is a strategy's run of several chains."""
        return self.strategy != "chain"

    @property
    def finished(self) -> bool:
        return self.result is not None

    @property
    def shown(self) -> ChainView | None:
        """The chain shown in full: the only one, or the one the decision chose."""
        if not self.several:
            return self.chains[0]
        if self.decision is None or self.decision.chosen is None:
            return None
        return self.chain(self.decision.chosen)

    @property
    def model(self) -> str:
        return next((chain.model for chain in self.chains if chain.model), "")

    @property
    def answer(self) -> FinalAnswer | None:
        """The run's final answer, once there is one."""
        if self.result is not None:
            return self.result.answer
        shown = self.shown
        return shown.final if shown is not None else None

    def chain(self, index: int) -> ChainView:
        while len(self.chains) <= index:
            self.chains.append(ChainView())
        return self.chains[index]

    def elapsed(self) -> float:
        return self.result.seconds if self.result else time.monotonic() - self.started

    def apply(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self.question, self.strategy, self.size = event.question, event.strategy, event.chains
            self.chains = []
        elif isinstance(event, InChain):
            self.chain(event.chain).apply(event.event)
        elif isinstance(event, ChainRead):
            self.reads.append(event)
        elif isinstance(event, Decided):
            self.decision = event.decision
        elif isinstance(event, (ChainCompleted, ChainFailed)):
            self.result = event.result
            self.error = event.error if isinstance(event, ChainFailed) else None
            if not self.several:
                self.chains[0].apply(event)
        else:
            self.chains[0].apply(event)
            if isinstance(event, ChainStarted):
                self.question = event.question


class Growing:
    """A document written out as it grows: each call returns what is new since the last."""

    def __init__(self) -> None:
        self.sent = ""

    def grow(self, document: str) -> str:
        """The part of ``document`` not written yet; nothing if it no longer starts with what
        was written (sent text cannot be taken back)."""
        if len(document) <= len(self.sent) or not document.startswith(self.sent):
            return ""
        new = document[len(self.sent) :]
        self.sent = document
        return new
