"""A chain running behind the web page: a thread consumes its events, the page reads snapshots.

Streamlit reruns the page script on every click, and a rerun interrupts whatever the script
was doing.  So the chain does not run inside the script: a :class:`LiveRun` consumes the
chain's events on a thread of its own, feeds them to the history recorder, and folds them
into a :class:`ChainView`.  The page only draws snapshots of that view, every fraction of a
second while the chain runs; clicking Stop cancels the chain, and any other rerun simply
picks the run up again where it is.  Nothing here imports Streamlit.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..answers import Vote
from ..cancel import CancelToken
from ..events import (
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
    FinalAnswer,
    Retry,
    Step,
    StepDelta,
    StepDiscarded,
    StepDone,
    StepStarted,
)
from ..history import ChainRecord, ChainRecorder
from ..strategies import SampleDone, SampleEvent, StrategyEvent, VoteDone


@dataclass
class PartialStep:
    """The step being generated, as much of it as has streamed in."""

    index: int
    title: str = ""
    content: str = ""
    runs: list[CodeRun] = field(default_factory=list)  # its code blocks that have run
    running_code: str | None = None  # the block running in the sandbox right now


@dataclass(frozen=True)
class Notice:
    """Something the chain threw away: a failed attempt (``retry``) or a cut step."""

    kind: str  # "retry" or "discarded"
    target: str  # "step" or "answer"
    index: int
    attempt: int
    reason: str


@dataclass
class SampleState:
    """One self-consistency chain, as far as the page follows it while the samples run."""

    index: int  # 1-based, as shown
    steps: int = 0
    answer: str | None = None
    failed: str | None = None


@dataclass
class ChainView:
    """Everything the page shows about one chain, built from its events only."""

    question: str = ""
    model: str = ""
    mode: str = ""
    steps: list[Step] = field(default_factory=list)
    current: PartialStep | None = None
    answering: bool = False
    answer_text: str = ""  # the answer as it streams
    answer: FinalAnswer | None = None
    notices: list[Notice] = field(default_factory=list)
    error: ChainError | None = None
    result: ChainResult | None = None  # set by the terminal event
    started: float = field(default_factory=time.monotonic)
    # Self-consistency only: the chains that vote, and the vote once it is taken.
    samples: list[SampleState] = field(default_factory=list)
    vote: Vote | None = None
    k: int = 0

    @property
    def finished(self) -> bool:
        return self.result is not None

    def elapsed(self) -> float:
        return self.result.seconds if self.result else time.monotonic() - self.started

    def _sample(self, index: int) -> SampleState:
        while len(self.samples) <= index:
            self.samples.append(SampleState(len(self.samples) + 1))
        return self.samples[index]

    def _step(self, index: int) -> PartialStep:
        """The step being written, started afresh if the event is about another one."""
        if self.current is None or self.current.index != index:
            self.current = PartialStep(index)
        return self.current

    def apply(self, event: ChainEvent | StrategyEvent) -> None:
        if isinstance(event, SampleEvent):
            sample = self._sample(event.sample)
            if isinstance(event.event, StepDone):
                sample.steps += 1
            elif isinstance(event.event, ChainFailed):
                sample.failed = event.event.error.kind
            return
        if isinstance(event, SampleDone):
            sample = self._sample(event.sample)
            answer = event.result.answer
            sample.answer = answer.text if answer else None
            return
        if isinstance(event, VoteDone):
            self.vote = event.outcome.vote
            return
        if isinstance(event, ChainStarted):
            self.question, self.model, self.mode = event.question, event.model, event.mode
        elif isinstance(event, StepStarted):
            self.current = PartialStep(event.index)
        elif isinstance(event, StepDelta):
            current = self._step(event.index)
            if event.field == "title":
                current.title += event.text
            else:
                current.content += event.text
        elif isinstance(event, CodeStarted):
            self._step(event.index).running_code = event.code
        elif isinstance(event, CodeDone):
            current = self._step(event.index)
            current.runs.append(event.run)
            current.running_code = None
        elif isinstance(event, Retry):
            # The attempt's text is thrown away; the next attempt streams from empty.
            self.notices.append(
                Notice("retry", event.target, event.index, event.attempt, event.reason)
            )
            if event.target == "step":
                self.current = PartialStep(event.index)
            else:
                self.answer_text = ""
        elif isinstance(event, StepDiscarded):
            self.notices.append(Notice("discarded", "step", event.index, 0, event.reason))
            self.current = None
        elif isinstance(event, StepDone):
            self.steps.append(event.step)
            self.current = None
        elif isinstance(event, AnswerStarted):
            self.answering, self.answer_text = True, ""
        elif isinstance(event, AnswerDelta):
            self.answer_text += event.text
        elif isinstance(event, AnswerDone):
            self.answer, self.answer_text = event.answer, event.answer.text
        elif isinstance(event, (ChainCompleted, ChainFailed)):
            self.result = event.result
            self.steps = list(event.result.steps)
            self.answer = event.result.answer
            self.error = event.error if isinstance(event, ChainFailed) else None
            self.current, self.answering = None, False


class LiveRun:
    """One chain consumed on a background thread.  Start it, read snapshots, stop it."""

    def __init__(
        self,
        question: str,
        events: Callable[[CancelToken], Iterator[ChainEvent | StrategyEvent]],
        recorder: ChainRecorder | None = None,
        *,
        backend: str = "",
        settings: dict[str, Any] | None = None,
        samples: int = 0,
    ) -> None:
        """``samples``: for self-consistency, how many chains vote (0 for one chain)."""
        self.question = question
        self._events = events
        self.recorder = recorder
        self.backend = backend
        self.settings = settings or {}
        self.created_at = time.time()
        self.cancel_token = CancelToken()
        self._view = ChainView(question=question, k=samples)
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._consume, name="thinkchain-ui-run", daemon=True)

    @property
    def chain_id(self) -> str | None:
        return self.recorder.chain_id if self.recorder else None

    @property
    def conversation(self) -> str:
        """The id of the conversation the chain is a turn of ("" when it is not recorded)."""
        return self.recorder.conversation if self.recorder else ""

    def start(self) -> LiveRun:
        self._thread.start()
        return self

    def _consume(self) -> None:
        stream = self._events(self.cancel_token)
        try:
            for event in stream:
                with self._lock:
                    self._view.apply(event)
                # The history keeps chains: a vote's samples are not kept, its winner is.
                if self.recorder is not None and not isinstance(
                    event, (SampleEvent, SampleDone, VoteDone)
                ):
                    self.recorder.handle(event)
        except Exception as err:  # the chain never raises; a bug here must still end the run
            with self._lock:
                view = self._view
                result = ChainResult(question=view.question, lang="", steps=list(view.steps))
                view.apply(ChainFailed(ChainError("backend_error", repr(err)), result))
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()
            if self.recorder is not None:
                # The run counts as done once its history is written (or has failed), so
                # the page can say whether it was saved.
                self.recorder.close(wait=True, timeout=None)

    def snapshot(self) -> ChainView:
        """A copy of the view that the chain's thread will not change under the reader."""
        with self._lock:
            return _copy_view(self._view)

    def record(self) -> ChainRecord | None:
        """The finished chain as the history keeps it; None while it runs."""
        view = self.snapshot()
        if view.result is None:
            return None
        return ChainRecord.from_result(
            view.result,
            chain_id=self.chain_id or "",
            created_at=self.created_at,
            backend=self.backend,
            source="ui",
            settings=self.settings,
            conversation=self.conversation,
        )

    @property
    def history_error(self) -> str | None:
        return self.recorder.error if self.recorder is not None else None

    @property
    def done(self) -> bool:
        return not self._thread.is_alive() and self._thread.ident is not None

    def wait(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return self.done


def _copy_view(view: ChainView) -> ChainView:
    snapshot = copy.copy(view)
    snapshot.steps = list(view.steps)
    snapshot.notices = list(view.notices)
    snapshot.current = copy.copy(view.current)
    if snapshot.current is not None:
        snapshot.current.runs = list(snapshot.current.runs)
    snapshot.samples = [copy.copy(sample) for sample in view.samples]
    return snapshot
