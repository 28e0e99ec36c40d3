"""Strategies: a run of several chains and a decision, in the same protocol as one chain.

A run of one chain is a :class:`~thinkchain.chain.Chain`.  A strategy runs several chains
for the same question and decides between them; it speaks the same protocol, so no consumer
knows which strategy ran:

* ``RunStarted`` first (the strategy, how many chains it may start);
* each chain's events as they happen, wrapped in ``InChain(chain, event)``;
* ``ChainRead`` when a chain ends (the strategy's reading of its answer);
* ``Decided`` with the :class:`~thinkchain.results.Decision`;
* then, as for a chain, one ``ChainCompleted``/``ChainFailed`` whose result is the chosen
  chain's, with every chain (``result.chains``) and the decision (``result.decision``).

:func:`make_run` builds the run a :class:`~thinkchain.settings.StrategySettings` asks for;
every face calls it.

Self-consistency samples K chains, reads each final answer with the shared normaliser
(answers.py) and takes the majority.  Against an HTTP server the K chains run concurrently (a
batching server serves them for little more than the cost of one); on a backend that decodes
one sequence at a time they run one after another, each finding the shared prefix (system
prompt and question) already in the KV cache.  Early stopping: as soon as the leading answer
can no longer be overtaken by the samples still to come, the rest are cancelled
("decisive"); "agree" stops as soon as the first ``agree_n`` answers are the same.  When
samples run concurrently, early stopping starts them in two waves: first just enough samples
to decide the vote on their own, then the rest only if those disagreed.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncGenerator, Sequence
from time import perf_counter

from . import _bridge
from . import chain as chain_module
from .answers import Expect, decided, extract_answer, vote
from .backends.base import Backend, Message
from .cancel import CancelToken
from .chain import Chain
from .events import (
    ChainCompleted,
    ChainError,
    ChainFailed,
    ChainRead,
    ChainResult,
    Decided,
    Decision,
    InChain,
    RunEvent,
    RunStarted,
)
from .settings import ChainSettings, EarlyStop, StrategySettings


def runs_in_parallel(backend: Backend) -> bool:
    """Whether the backend serves several sequences at once (interleaving chains on one that
    does not would thrash its KV cache)."""
    return backend.capabilities.parallel_sequences != 1


class SelfConsistency(_bridge.EventRunner[RunEvent, ChainResult]):
    """K chains, one vote.  ``temperature`` overrides the chain's, so samples differ.

    ``expect`` is passed to :func:`~thinkchain.answers.extract_answer` when the caller knows
    the kind of answer (the evaluation does), so "three" and "3" vote together.
    """

    name = "sc"
    role = "sample"  # what each chain is, as the consumers name it

    def __init__(
        self,
        backend: Backend,
        settings: ChainSettings | None = None,
        *,
        k: int = 5,
        temperature: float | None = StrategySettings().temperature,
        early_stop: EarlyStop = "decisive",
        agree_n: int = 3,
        parallel: bool | None = None,
        expect: Expect = None,
    ) -> None:
        # The same rules as StrategySettings, for callers of the Python API.
        checked = StrategySettings(
            strategy="sc", k=k, temperature=temperature, early_stop=early_stop, agree_n=agree_n
        )
        self.backend = backend
        self.settings = settings or ChainSettings()
        self.k = checked.k
        self.early_stop = checked.early_stop
        self.agree_n = checked.agree_n
        self.parallel = runs_in_parallel(backend) if parallel is None else parallel
        self.expect = expect
        base_seed = self.settings.seed if self.settings.seed is not None else 0
        update: dict[str, object] = {}
        if checked.temperature is not None:
            update["temperature"] = checked.temperature
        # Each sample gets its own seed: reproducible, and different from its siblings.
        self._sample_settings = [
            self.settings.derive(**update, seed=base_seed + i) for i in range(self.k)
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
    ) -> AsyncGenerator[RunEvent, None]:
        started = perf_counter()
        queue: asyncio.Queue[RunEvent | None] = asyncio.Queue()
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
                queue.put_nowait(InChain(i, event))
                if isinstance(event, (ChainCompleted, ChainFailed)):
                    nonlocal stopped_early
                    result = event.result
                    results[i] = result
                    key = self.answer_key(result)
                    keys_in_order.append(key)
                    queue.put_nowait(ChainRead(i, self.role, key, result))
                    # Decided here, by the producer, not when the consumer reads the event:
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

        yield RunStarted(question, self.name, self.k)
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
        decision = self._decide(samples, stopped_early)
        yield Decided(decision)
        yield self._end(question, samples, decision, perf_counter() - started)

    def _decide(self, samples: list[ChainResult], stopped_early: bool) -> Decision:
        keys = tuple(self.answer_key(r) for r in samples)
        the_vote = vote(keys)
        chosen = keys.index(the_vote.winner) if the_vote.winner is not None else None
        cancelled = sum(1 for r in samples if r.error is not None and r.error.kind == "cancelled")
        return Decision(
            strategy=self.name,
            reads=keys,
            counts=the_vote.counts,
            winner=the_vote.winner,
            voters=the_vote.voters,
            chosen=chosen,
            stopped_early=stopped_early,
            unfinished=self.k - len(samples) + cancelled,
        )

    def _end(
        self, question: str, samples: list[ChainResult], decision: Decision, seconds: float
    ) -> ChainCompleted | ChainFailed:
        """The run's terminal event: the chosen chain's result with every chain and the
        decision; without a winner, a failure that keeps them all."""
        if decision.chosen is not None:
            winner = samples[decision.chosen]
            result = dataclasses.replace(
                winner, error=None, seconds=seconds, chains=samples, decision=decision
            )
            return ChainCompleted(result)
        failures = [r.error for r in samples if r.error is not None]
        error = (
            failures[0]
            if failures
            else ChainError("answer_failed", "no sample produced a readable answer")
        )
        result = ChainResult(
            question=question,
            lang=samples[0].lang if samples else "",
            model=self.backend.model,
            mode=self.settings.mode,
            error=error,
            seconds=seconds,
            chains=samples,
            decision=decision,
        )
        return ChainFailed(error, result)

    def _result(self, event: RunEvent) -> ChainResult | None:
        return event.result if isinstance(event, (ChainCompleted, ChainFailed)) else None


Run = Chain | SelfConsistency


def make_run(
    backend: Backend,
    settings: ChainSettings,
    strategy: StrategySettings | None = None,
    *,
    expect: Expect = None,
) -> Run:
    """The run ``strategy`` asks for over ``backend``: one chain, or a strategy's chains."""
    strategy = strategy or StrategySettings()
    if strategy.strategy == "chain":
        # Looked up where it is defined, so that a test may stand in its own chain there.
        return chain_module.Chain(backend, settings)
    return SelfConsistency(
        backend,
        settings,
        k=strategy.k,
        temperature=strategy.temperature,
        early_stop=strategy.early_stop,
        agree_n=strategy.agree_n,
        expect=expect,
    )
