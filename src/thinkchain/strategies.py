"""Strategies that spend more compute where it pays: self-consistency over any chain mode.

Self-consistency samples K chains for the same question, reads each final answer with the
shared normaliser (answers.py) and takes the majority.  Against an HTTP server the K chains
run concurrently (a batching server serves them for little more than the cost of one); on
the in-process model they run one after another, and each sample after the first finds the
shared prefix (system prompt and question) already in the KV cache.

Early stopping: as soon as the leading answer can no longer be overtaken by the samples
still to come, the rest are cancelled ("decisive"); "agree" stops as soon as the first
``agree_n`` answers are the same, trading a little accuracy for a lot of time.  When samples
run concurrently, early stopping starts them in two waves: first just enough samples to
decide the vote on their own, then the rest only if those disagreed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from time import perf_counter
from typing import ClassVar, Literal

from . import _bridge
from .answers import Expect, Vote, decided, extract_answer, vote
from .backends.base import Backend, Message
from .cancel import CancelToken
from .chain import Chain
from .events import (
    ChainCompleted,
    ChainError,
    ChainEvent,
    ChainFailed,
    ChainResult,
    Event,
    Usage,
)
from .replay import replay
from .settings import ChainSettings

EarlyStop = Literal["off", "decisive", "agree"]


@dataclass(frozen=True, slots=True)
class SampleEvent(Event):
    """An event of sample ``sample`` (0-based), as its chain emitted it."""

    type: ClassVar[str] = "sample_event"
    sample: int
    event: ChainEvent


@dataclass(frozen=True, slots=True)
class SampleDone(Event):
    type: ClassVar[str] = "sample_done"
    sample: int
    result: ChainResult
    answer_key: str | None  # the normalised answer that votes; None if unreadable


@dataclass(frozen=True, slots=True)
class VoteDone(Event):
    """Terminal for a strategy run: the vote, every sample, and the winning chain."""

    type: ClassVar[str] = "vote_done"
    outcome: Outcome


@dataclass
class Outcome:
    question: str
    vote: Vote
    samples: list[ChainResult]  # every sample that started, in order, finished or not
    answer_keys: list[str | None]  # the normalised answer of each sample (None: no vote)
    winner: int | None  # index of the first sample whose answer won
    stopped_early: bool
    seconds: float
    error: ChainError | None = None
    cancelled_samples: int = 0  # samples cancelled (stopped early) or never started
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.winner is not None

    @property
    def answer(self) -> str | None:
        """The winning chain's own final-answer text (what a user reads)."""
        if self.winner is None:
            return None
        answer = self.samples[self.winner].answer
        return answer.text if answer else None

    @property
    def winning_chain(self) -> ChainResult | None:
        return None if self.winner is None else self.samples[self.winner]

    @property
    def usage(self) -> Usage:
        total = Usage()
        for sample in self.samples:
            total = total + sample.usage
        return total

    def to_dict(self) -> dict[str, object]:
        return {
            "question": self.question,
            "answer": self.answer,
            "vote": {
                "winner": self.vote.winner,
                "counts": self.vote.counts,
                "voters": self.vote.voters,
            },
            "winner": self.winner,
            "answer_keys": self.answer_keys,
            "stopped_early": self.stopped_early,
            "seconds": round(self.seconds, 4),
            "usage": self.usage.to_dict(),
            "error": self.error.to_dict() if self.error else None,
            "samples": [s.to_dict() for s in self.samples],
        }


StrategyEvent = SampleEvent | SampleDone | VoteDone


def runs_in_parallel(backend: Backend) -> bool:
    """In-process backends decode one sequence at a time; interleaving would thrash the KV."""
    return getattr(backend, "max_parallel", None) != 1


class SelfConsistency(_bridge.EventRunner[StrategyEvent, "Outcome"]):
    """K chains, one vote.  ``temperature`` overrides the chain's, so samples differ.

    ``expect`` is passed to :func:`~thinkchain.answers.extract_answer` when the caller knows
    the kind of answer (the evaluation does), so "three" and "3" vote together.
    """

    def __init__(
        self,
        backend: Backend,
        settings: ChainSettings | None = None,
        *,
        k: int = 5,
        temperature: float | None = 0.7,
        early_stop: EarlyStop = "decisive",
        agree_n: int = 3,
        parallel: bool | None = None,
        expect: Expect = None,
    ) -> None:
        if k < 1:
            raise ValueError("k must be at least 1")
        if early_stop not in ("off", "decisive", "agree"):
            raise ValueError(f"unknown early_stop {early_stop!r}")
        if agree_n < 2:
            # Refused rather than raised to 2 behind the caller's back: one answer agrees with
            # nothing, and the CLI says the same.
            raise ValueError("agree_n must be at least 2")
        self.backend = backend
        self.settings = settings or ChainSettings()
        self.k = k
        self.early_stop = early_stop
        self.agree_n = agree_n
        self.parallel = runs_in_parallel(backend) if parallel is None else parallel
        self.expect = expect
        base_seed = self.settings.seed if self.settings.seed is not None else 0
        update: dict[str, object] = {}
        if temperature is not None:
            update["temperature"] = temperature
        # Each sample gets its own seed: reproducible, and different from its siblings.
        self._sample_settings = [
            ChainSettings.model_validate(
                {**self.settings.model_dump(), **update, "seed": base_seed + i}
            )
            for i in range(k)
        ]

    def answer_key(self, result: ChainResult) -> str | None:
        """The normalised answer a sample votes with; None when it has no readable answer.

        A sample whose answer was complete votes even if the chain ended as cancelled just
        after it (early stopping can race with its last event).
        """
        return extract_answer(result.answer.text, self.expect) if result.answer else None

    def _first_wave(self) -> int:
        """Samples started together before looking at their answers."""
        if self.early_stop == "agree":
            return min(self.k, self.agree_n)
        if self.early_stop == "decisive":
            return min(self.k, self.k // 2 + 1)  # the smallest number that can decide alone
        return self.k

    def _should_stop(self, keys: list[str | None]) -> bool:
        if self.early_stop == "off" or len(keys) >= self.k:
            return False
        if self.early_stop == "agree":
            first = keys[: self.agree_n]
            if len(first) == self.agree_n and first[0] is not None and len(set(first)) == 1:
                return True
        return decided(keys, self.k)

    async def astream(
        self,
        question: str,
        *,
        context: Sequence[Message] = (),
        cancel: CancelToken | None = None,
    ) -> AsyncIterator[StrategyEvent]:
        started = perf_counter()
        queue: asyncio.Queue[StrategyEvent | None] = asyncio.Queue()
        results: dict[int, ChainResult] = {}
        keys_in_order: list[str | None] = []  # in the order samples finished
        tokens = [CancelToken() for _ in range(self.k)]
        stopped_early = False

        def forward_cancel() -> None:
            for token in tokens:
                token.cancel()

        if cancel is not None:
            cancel.register(asyncio.get_running_loop(), forward_cancel)

        async def one(i: int) -> None:
            chain = Chain(self.backend, self._sample_settings[i])
            async for event in chain.astream(question, context=context, cancel=tokens[i]):
                queue.put_nowait(SampleEvent(i, event))
                if isinstance(event, (ChainCompleted, ChainFailed)):
                    nonlocal stopped_early
                    result = event.result
                    results[i] = result
                    key = self.answer_key(result)
                    keys_in_order.append(key)
                    queue.put_nowait(SampleDone(i, result, key))
                    # Decided here, by the producer, not when the consumer reads SampleDone:
                    # otherwise a one-at-a-time backend has already begun the next sample.
                    if not stopped_early and self._should_stop(keys_in_order):
                        stopped_early = True
                        for token in tokens:
                            token.cancel()

        async def drive() -> None:
            try:
                if self.parallel:
                    # With early stopping, a first wave just large enough to decide the vote
                    # runs alone; the rest start only if it did not agree.
                    first = self._first_wave()
                    await asyncio.gather(*(one(i) for i in range(first)))
                    if not stopped_early and not tokens[0].cancelled:
                        await asyncio.gather(*(one(i) for i in range(first, self.k)))
                else:
                    for i in range(self.k):
                        if tokens[i].cancelled:
                            break
                        await one(i)
            finally:
                # Always wake the consumer, or a failure here would leave it waiting forever.
                queue.put_nowait(None)

        runner = asyncio.create_task(drive())
        try:
            while True:
                item = await queue.get()
                if item is None:
                    break
                yield item
        finally:
            if cancel is not None:
                cancel.unregister(forward_cancel)
            if not runner.done():
                for token in tokens:
                    token.cancel()
                with contextlib.suppress(Exception):
                    await asyncio.shield(runner)
        # A failure inside the strategy itself (not a failed chain: those are results) is a
        # bug; raise it here rather than voting over a partial set of samples.
        await runner

        samples = [results[i] for i in sorted(results)]
        keys = [self.answer_key(r) for r in samples]
        the_vote = vote(keys)
        winner = None
        if the_vote.winner is not None:
            winner = keys.index(the_vote.winner)
        error = None
        if winner is None:
            failures = [r.error for r in samples if r.error is not None]
            error = (
                failures[0]
                if failures
                else ChainError("answer_failed", "no sample produced a readable answer")
            )
        outcome = Outcome(
            question=question,
            vote=the_vote,
            samples=samples,
            answer_keys=keys,
            winner=winner,
            stopped_early=stopped_early,
            seconds=perf_counter() - started,
            error=error,
            cancelled_samples=self.k
            - len(samples)
            + sum(1 for r in samples if r.error is not None and r.error.kind == "cancelled"),
        )
        yield VoteDone(outcome)

    def _result(self, event: StrategyEvent) -> Outcome | None:
        return event.outcome if isinstance(event, VoteDone) else None


def stream_as_chain(
    sc: SelfConsistency,
    question: str,
    *,
    context: Sequence[Message] = (),
    cancel: CancelToken | None = None,
) -> Iterator[StrategyEvent | ChainEvent]:
    """Self-consistency for chain consumers: the samples' progress and the vote as they
    happen, then the winning chain told again as chain events, ending in one terminal event.
    ``context``: the conversation before the question, as for a chain."""
    outcome: Outcome | None = None
    for event in sc.stream(question, context=context, cancel=cancel):
        yield event
        if isinstance(event, VoteDone):
            outcome = event.outcome
    assert outcome is not None
    winner = outcome.winning_chain
    if winner is not None:
        yield from replay(winner)
        return
    failed = ChainResult(question=question, lang="", model=sc.backend.model, mode="sc")
    failed.seconds = outcome.seconds
    yield ChainFailed(outcome.error or ChainError("answer_failed", "no answer"), failed)
