"""One view of a run, folded from its events: the state every consumer formats.

The chain loop emits events; :class:`ChainView` folds one chain's events into what a person
would see of it, and :class:`RunView` folds a run (one chain, or several chains and the
strategy's decisions) the same way.  The terminal, the page, the proxy and the exports only
format this state: none of them keeps its own idea of the open step, the retries or the answer
so far.

What the fold keeps of a step, for each attempt at it, in the order it happened:

* the text as it streamed (``title``, ``content``) and, in arrival order, the code that ran in
  it (:attr:`StepAttempt.log`), for a consumer that prints as things happen;
* its content as it reads (:meth:`StepAttempt.parts`): text cut where a Python block ends and
  each run right after its block, where the chain said the block closed (CodeWritten) - never
  found again by searching the text.  What streams adds up exactly to the finished fields:
  a field's text shows stripped, blanks at its end are held back until text follows them, and
  text after a block that has not run yet waits for its output.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

from thinkchain.chain.events import (
    AnswerDelta,
    AnswerDone,
    AnswerStarted,
    ChainCompleted,
    ChainError,
    ChainFailed,
    ChainResult,
    ChainStarted,
    CodeDone,
    CodeRun,
    CodeStarted,
    CodeWritten,
    Event,
    FinalAnswer,
    Retry,
    Step,
    StepDelta,
    StepDiscarded,
    StepDone,
    StepStarted,
)
from thinkchain.chain.labels import may_be_untitled
from thinkchain.chain.parts import Part, RunPart, TextPart

# -- one attempt at a step, as it streams ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Streamed:
    """A piece of a step's text in arrival order (the log of a step attempt)."""

    field: Literal["title", "content"]
    text: str


@dataclass(frozen=True, slots=True)
class CodeBegan:
    code: str


@dataclass(frozen=True, slots=True)
class CodeEnded:
    run: CodeRun


LogItem = Streamed | CodeBegan | CodeEnded


@dataclass
class _Block:
    """A Python block of a step attempt: where it ends in the raw content, and its run."""

    code: str
    end: int  # characters into the raw (streamed) content
    started: bool = False
    run: CodeRun | None = None


@dataclass
class StepAttempt:
    """One attempt at a step, from its first event until it is done, retried or dropped."""

    index: int
    restarted: bool = False  # begun by a retry's new text, with no StepStarted of its own
    title: str = ""  # the title's text as it streamed
    content: str = ""  # the content's text as it streamed
    first: Literal["title", "content"] | None = None  # the field that streamed first
    heading_title: str | None = None  # the title as it stood when the content began
    log: list[LogItem] = field(default_factory=list)
    blocks: list[_Block] = field(default_factory=list)
    step: Step | None = None  # the finished step (StepDone)
    ended: Literal["retried", "dropped"] | None = None

    # -- folding -------------------------------------------------------------------------------

    def add(self, name: Literal["title", "content"], text: str) -> None:
        if self.first is None:
            self.first = name
        if name == "title":
            self.title += text
        else:
            if self.heading_title is None:
                self.heading_title = self.title
            self.content += text
        self.log.append(Streamed(name, text))

    def written(self, code: str, end: int) -> None:
        self.blocks.append(_Block(code, end))

    def code_started(self, code: str) -> None:
        block = next((b for b in self.blocks if not b.started), None)
        if block is None:
            # A block nobody announced: it sits where the text had got to when it ran.
            block = _Block(code, len(self.content))
            self.blocks.append(block)
        block.started = True
        self.log.append(CodeBegan(code))

    def code_done(self, run: CodeRun) -> None:
        block = next((b for b in self.blocks if b.started and b.run is None), None)
        if block is None:
            block = _Block(run.code, len(self.content), started=True)
            self.blocks.append(block)
        block.run = run
        self.log.append(CodeEnded(run))

    # -- reading -------------------------------------------------------------------------------

    @property
    def done(self) -> bool:
        return self.step is not None

    @property
    def running(self) -> str | None:
        """The code running in the sandbox right now, if any."""
        return next((b.code for b in self.blocks if b.started and b.run is None), None)

    @property
    def runs(self) -> list[CodeRun]:
        return [b.run for b in self.blocks if b.run is not None]

    @property
    def shown_title(self) -> str:
        """The title as far as it reads: stripped (the finished step's own, once done)."""
        return self.step.title if self.step is not None else self.title.strip()

    def parts(self) -> list[Part]:
        """The content as it reads so far: stripped text, cut where each block ends, each run
        after its block; text after a block that has not run yet is held back (its output goes
        first).  A block not run yet ends the parts as a RunPart without a run."""
        text = self.content.strip()
        lead = len(self.content) - len(self.content.lstrip())
        parts: list[Part] = []
        pos = 0
        for block in self.blocks:
            end = min(max(block.end - lead, pos), len(text))
            if end > pos:
                parts.append(TextPart(text[pos:end]))
            parts.append(RunPart(block.code, block.run))
            pos = end
            if block.run is None:
                return parts
        if pos < len(text):
            parts.append(TextPart(text[pos:]))
        return parts

    def heading_shown(self) -> bool:
        """Whether the heading is out: once the content began, or once the title cannot be
        only "Step N" any more."""
        if self.first is None:
            return False
        return self.heading_title is not None or not may_be_untitled(self.index, self.title)


@dataclass(frozen=True, slots=True)
class Notice:
    """Something the chain threw away: a failed attempt (``retry``) or a dropped step."""

    kind: Literal["retry", "discarded"]
    target: Literal["step", "answer"]
    index: int
    attempt: int
    reason: str


@dataclass
class AnswerAttempt:
    """One attempt at the final answer as it streams."""

    text: str = ""  # as streamed
    final: FinalAnswer | None = None
    retried: bool = False
    announced: bool = False  # begun by AnswerStarted (a retry's new text goes on without one)

    @property
    def shown(self) -> str:
        """The answer as far as it reads: stripped, its blanks at the end held back."""
        return self.text.strip()


TimelineEntry = StepAttempt | Notice | AnswerAttempt


# -- one chain ---------------------------------------------------------------------------------


@dataclass
class ChainView:
    """Everything a person sees of one chain, built from its events only."""

    question: str = ""
    lang: str = "en"
    model: str = ""
    mode: str = ""
    timeline: list[TimelineEntry] = field(default_factory=list)  # in the order it happened
    steps: list[Step] = field(default_factory=list)  # the finished steps
    current: StepAttempt | None = None  # the step being written
    answer: AnswerAttempt | None = None  # the answer being written (or written)
    final: FinalAnswer | None = None
    result: ChainResult | None = None  # set by the terminal event
    error: ChainError | None = None
    started: float = field(default_factory=time.monotonic)

    @property
    def finished(self) -> bool:
        return self.result is not None

    @property
    def answering(self) -> bool:
        return self.answer is not None and not self.finished

    @property
    def notices(self) -> list[Notice]:
        return [entry for entry in self.timeline if isinstance(entry, Notice)]

    @property
    def attempts(self) -> list[StepAttempt]:
        return [entry for entry in self.timeline if isinstance(entry, StepAttempt)]

    def elapsed(self) -> float:
        return self.result.seconds if self.result else time.monotonic() - self.started

    def _attempt(self, index: int) -> StepAttempt:
        """The attempt at step ``index`` being written; a new one if the event is about
        another step or the last attempt ended (a retry's new text starts it over)."""
        if self.current is None or self.current.index != index:
            self.current = StepAttempt(index, restarted=True)
            self.timeline.append(self.current)
        return self.current

    def apply(self, event: Event) -> None:
        if isinstance(event, ChainStarted):
            self.question, self.lang = event.question, event.lang
            self.model, self.mode = event.model, event.mode
        elif isinstance(event, StepStarted):
            self.current = StepAttempt(event.index)
            self.timeline.append(self.current)
        elif isinstance(event, StepDelta):
            self._attempt(event.index).add(event.field, event.text)
        elif isinstance(event, CodeWritten):
            self._attempt(event.index).written(event.code, event.end)
        elif isinstance(event, CodeStarted):
            self._attempt(event.index).code_started(event.code)
        elif isinstance(event, CodeDone):
            self._attempt(event.index).code_done(event.run)
        elif isinstance(event, Retry):
            self.timeline.append(
                Notice("retry", event.target, event.index, event.attempt, event.reason)
            )
            if event.target == "step":
                if self.current is not None:
                    self.current.ended = "retried"
                self.current = None
            elif self.answer is not None:
                self.answer.retried = True
                self.answer = None
        elif isinstance(event, StepDiscarded):
            self.timeline.append(Notice("discarded", "step", event.index, 0, event.reason))
            if self.current is not None:
                self.current.ended = "dropped"
            self.current = None
        elif isinstance(event, StepDone):
            self._attempt(event.step.index).step = event.step
            self.steps.append(event.step)
            self.current = None
        elif isinstance(event, AnswerStarted):
            self.answer = AnswerAttempt(announced=True)
            self.timeline.append(self.answer)
        elif isinstance(event, AnswerDelta):
            if self.answer is None:
                self.answer = AnswerAttempt()
                self.timeline.append(self.answer)
            self.answer.text += event.text
        elif isinstance(event, AnswerDone):
            if self.answer is None:
                self.answer = AnswerAttempt()
                self.timeline.append(self.answer)
            self.answer.final = event.answer
            self.final = event.answer
        elif isinstance(event, (ChainCompleted, ChainFailed)):
            self.result = event.result
            self.steps = list(event.result.steps)
            self.final = event.result.answer
            self.error = event.error if isinstance(event, ChainFailed) else None
            self.current = None
