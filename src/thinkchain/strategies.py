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
every face calls it.  Two strategies vote over the chains' normalised answers (answers.py):

* **self-consistency** (``sc``) samples K chains of one kind and takes the majority;
* **both ways** (``both``) asks a prose chain and a code chain side by side: a program and
  prose fail on different questions, so when the two reach the same answer it is very likely
  right; only when they disagree are more samples of both kinds drawn, one at a time, until one
  answer leads.

A tie is never settled by which chain finished first: another sample is drawn while the budget
allows; a tie left when it is spent goes to the answer of the lowest-numbered chain (the first
of the pair, for ``both``: the program).

Chains run concurrently where the backend serves several sequences at once (a batching
server, or the embedded engine with slots); on a backend that serves one at a time they run one
after another, each finding the shared prefix already in the KV cache.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections import Counter
from collections.abc import AsyncGenerator, Sequence
from time import perf_counter

from . import _bridge
from . import chain as chain_module
from .answers import Expect, decided, extract_answer, vote
from .backends.base import Backend, Message
from .cancel import CancelToken
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


def leader(keys: Sequence[str | None]) -> str | None:
    """The answer given by more chains than any other (None: no readable answer, or a tie)."""
    ranked = Counter(k for k in keys if k is not None).most_common(2)
    if not ranked or (len(ranked) > 1 and ranked[0][1] == ranked[1][1]):
        return None
    return ranked[0][0]


class Voting(_bridge.EventRunner[RunEvent, ChainResult]):
    """What every voting strategy shares: it starts chains in batches it chooses, reads each
    finished chain's answer, stops once it has decided, and ends with the vote.

    A strategy says which chains to start next (:meth:`next_batch`), what settings and role
    each has, and when its answer is settled (:meth:`settled`, which cancels chains still
    running).  ``expect`` is passed to :func:`~thinkchain.answers.extract_answer` when the
    caller knows the kind of answer (the evaluation does), so "three" and "3" vote together.
    """

    name = "vote"

    def __init__(
        self,
        backend: Backend,
        settings: ChainSettings | None,
        *,
        budget: int,
        parallel: bool | None,
        expect: Expect,
    ) -> None:
        self.backend = backend
        self.settings = settings or ChainSettings()
        self.budget = budget  # chains it may start, tie-breaking ones included
        self.planned = budget  # chains it means to run (what "1 of N" counts)
        self.parallel = runs_in_parallel(backend) if parallel is None else parallel
        self.expect = expect

    # -- what a strategy decides -------------------------------------------------------------

    def chain_settings(self, index: int) -> ChainSettings:
        raise NotImplementedError

    def role(self, index: int) -> str:
        raise NotImplementedError

    def next_batch(self, started: int, keys: dict[int, str | None]) -> list[int]:
        """The chains to start now (none: the run is over), given the answers read so far."""
        raise NotImplementedError

    def settled(self, keys_in_order: list[str | None]) -> bool:
        """Whether the answers read so far (in the order chains finished) decide the run, so
        that chains still running can be stopped."""
        return False

    def answer_key(self, result: ChainResult) -> str | None:
        """The normalised answer a chain votes with; None when it has no readable answer.

        A chain whose answer was complete votes even if it ended as cancelled just after it
        (a decision can race with its last event).
        """
        return extract_answer(result.answer.text, self.expect) if result.answer else None

    # -- the run -----------------------------------------------------------------------------

    async def astream(
        self,
        question: str,
        *,
        context: Sequence[Message] = (),
        cancel: CancelToken | None = None,
    ) -> AsyncGenerator[RunEvent, None]:
        started_at = perf_counter()
        queue: asyncio.Queue[RunEvent | None] = asyncio.Queue()
        results: dict[int, ChainResult] = {}
        keys: dict[int, str | None] = {}
        keys_in_order: list[str | None] = []  # in the order chains finished
        tokens = [CancelToken() for _ in range(self.budget)]
        stopped_early = False

        def forward_cancel() -> None:
            for token in tokens:
                token.cancel()

        if cancel is not None:
            cancel.register(asyncio.get_running_loop(), forward_cancel)

        async def one(i: int) -> None:
            chain = chain_module.Chain(self.backend, self.chain_settings(i))
            async for event in chain.astream(question, context=context, cancel=tokens[i]):
                queue.put_nowait(InChain(i, event))
                if isinstance(event, (ChainCompleted, ChainFailed)):
                    nonlocal stopped_early
                    results[i] = event.result
                    key = keys[i] = self.answer_key(event.result)
                    keys_in_order.append(key)
                    queue.put_nowait(ChainRead(i, self.role(i), key, event.result))
                    # Decided here, by the producer, not when the consumer reads the event:
                    # otherwise a one-at-a-time backend has already begun the next chain.
                    if not stopped_early and self.settled(keys_in_order):
                        stopped_early = True
                        forward_cancel()

        async def drive() -> None:
            try:
                started = 0
                while not stopped_early and not tokens[0].cancelled:
                    batch = self.next_batch(started, dict(keys))
                    if not batch:
                        break
                    started += len(batch)
                    if self.parallel:
                        await asyncio.gather(*(one(i) for i in batch))
                    else:
                        for i in batch:
                            if tokens[i].cancelled:
                                break
                            await one(i)
            finally:
                # Always wake the consumer, or a failure here would leave it waiting forever.
                queue.put_nowait(None)

        yield RunStarted(question, self.name, self.planned)
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
                forward_cancel()
                with contextlib.suppress(Exception):
                    await asyncio.shield(runner)
        # A failure inside the strategy itself (not a failed chain: those are results) is a
        # bug; raise it here rather than voting over a partial set of chains.
        await runner

        chains = [results[i] for i in sorted(results)]
        decision = self._decide(chains, stopped_early)
        yield Decided(decision)
        yield self._end(question, chains, decision, perf_counter() - started_at)

    def _decide(self, chains: list[ChainResult], stopped_early: bool) -> Decision:
        # In chain order: a tie left at the end goes to the lowest-numbered chain's answer.
        reads = tuple(self.answer_key(r) for r in chains)
        the_vote = vote(reads)
        chosen = reads.index(the_vote.winner) if the_vote.winner is not None else None
        cancelled = sum(1 for r in chains if r.error is not None and r.error.kind == "cancelled")
        return Decision(
            strategy=self.name,
            reads=reads,
            counts=the_vote.counts,
            winner=the_vote.winner,
            voters=the_vote.voters,
            chosen=chosen,
            stopped_early=stopped_early,
            unfinished=self.unstarted(len(chains)) + cancelled,
        )

    def unstarted(self, ran: int) -> int:
        """Chains of the planned run that never started (or were stopped before an answer)."""
        return 0

    def _end(
        self, question: str, chains: list[ChainResult], decision: Decision, seconds: float
    ) -> ChainCompleted | ChainFailed:
        """The run's terminal event: the chosen chain's result with every chain and the
        decision; without a winner, a failure that keeps them all."""
        if decision.chosen is not None:
            winner = chains[decision.chosen]
            result = dataclasses.replace(
                winner, error=None, seconds=seconds, chains=chains, decision=decision
            )
            return ChainCompleted(result)
        failures = [r.error for r in chains if r.error is not None]
        error = (
            failures[0]
            if failures
            else ChainError("answer_failed", "no chain produced a readable answer")
        )
        result = ChainResult(
            question=question,
            lang=chains[0].lang if chains else "",
            model=self.backend.model,
            mode=self.settings.mode,
            error=error,
            seconds=seconds,
            chains=chains,
            decision=decision,
        )
        return ChainFailed(error, result)

    def _result(self, event: RunEvent) -> ChainResult | None:
        return event.result if isinstance(event, (ChainCompleted, ChainFailed)) else None


class SelfConsistency(Voting):
    """K chains, one vote.  ``temperature`` overrides the chain's, so samples differ.

    Early stopping: as soon as the leading answer can no longer be overtaken by the samples
    still to come, the rest are cancelled ("decisive"); "agree" stops as soon as the first
    ``agree_n`` answers are the same.  When samples run concurrently, early stopping starts
    them in two waves: first just enough samples to decide the vote on their own, then the
    rest only if those disagreed.  A tie after K samples draws up to ``tie_breaks`` more.
    """

    name = "sc"

    def __init__(
        self,
        backend: Backend,
        settings: ChainSettings | None = None,
        *,
        k: int = 5,
        temperature: float | None = StrategySettings().temperature,
        early_stop: EarlyStop = "decisive",
        agree_n: int = 3,
        tie_breaks: int = StrategySettings().tie_breaks,
        parallel: bool | None = None,
        expect: Expect = None,
    ) -> None:
        # The same rules as StrategySettings, for callers of the Python API.
        checked = StrategySettings(
            strategy="sc",
            k=k,
            temperature=temperature,
            early_stop=early_stop,
            agree_n=agree_n,
            tie_breaks=tie_breaks,
        )
        super().__init__(
            backend, settings, budget=k + checked.tie_breaks, parallel=parallel, expect=expect
        )
        self.k = self.planned = k
        self.early_stop = checked.early_stop
        self.agree_n = checked.agree_n
        base_seed = self.settings.seed if self.settings.seed is not None else 0
        update = {} if checked.temperature is None else {"temperature": checked.temperature}
        # Each sample gets its own seed: reproducible, and different from its siblings.
        self._sample_settings = [
            self.settings.derive(**update, seed=base_seed + i) for i in range(self.budget)
        ]

    def chain_settings(self, index: int) -> ChainSettings:
        return self._sample_settings[index]

    def role(self, index: int) -> str:
        return "sample"

    def _first_wave(self) -> int:
        """Samples started together before looking at their answers."""
        if self.early_stop == "agree":
            return min(self.k, self.agree_n)
        if self.early_stop == "decisive":
            return min(self.k, self.k // 2 + 1)  # the smallest number that can decide alone
        return self.k

    def next_batch(self, started: int, keys: dict[int, str | None]) -> list[int]:
        if started < self.k:
            if not self.parallel:
                return [started]
            end = self._first_wave() if started == 0 else self.k
            return list(range(started, end))
        # Every planned sample has answered: a tie at the top is settled by another one.
        read = [keys.get(i) for i in range(started)]
        if started < self.budget and any(read) and leader(read) is None:
            return [started]
        return []

    def settled(self, keys_in_order: list[str | None]) -> bool:
        if self.early_stop == "off" or len(keys_in_order) >= self.k:
            return False
        if self.early_stop == "agree":
            first = keys_in_order[: self.agree_n]
            if len(first) == self.agree_n and first[0] is not None and len(set(first)) == 1:
                return True
        return decided(keys_in_order, self.k)

    def unstarted(self, ran: int) -> int:
        return max(0, self.k - ran)


class BothWays(Voting):
    """A prose chain and a code chain for the same question, side by side; more of both,
    one at a time, only while their answers disagree (at most ``budget`` chains in all).

    Chain 0 is the program (code steps on), chain 1 the prose (no code), both at the chain's
    own temperature; the chains after them alternate program and prose, sampled at
    ``temperature`` with their own seeds.  The run is decided once one answer is given by
    more chains than any other and by at least two of them.
    """

    name = "both"

    def __init__(
        self,
        backend: Backend,
        settings: ChainSettings | None = None,
        *,
        budget: int = StrategySettings().k,
        temperature: float | None = StrategySettings().temperature,
        parallel: bool | None = None,
        expect: Expect = None,
    ) -> None:
        checked = StrategySettings(strategy="both", k=budget, temperature=temperature)
        if checked.k < 2:
            raise ValueError("both ways needs a budget of at least 2 chains")
        super().__init__(backend, settings, budget=checked.k, parallel=parallel, expect=expect)
        base = self.settings
        seed = base.seed if base.seed is not None else 0
        code = base.derive(tools=tuple(dict.fromkeys((*base.tools, "python"))))
        prose = base.derive(tools=tuple(t for t in base.tools if t != "python"))
        sampled = {} if checked.temperature is None else {"temperature": checked.temperature}
        self._settings = [code, prose] + [
            (code if i % 2 == 0 else prose).derive(**sampled, seed=seed + i)
            for i in range(2, self.budget)
        ]

    def chain_settings(self, index: int) -> ChainSettings:
        return self._settings[index]

    def role(self, index: int) -> str:
        return "program" if index % 2 == 0 else "prose"

    def next_batch(self, started: int, keys: dict[int, str | None]) -> list[int]:
        if started == 0:
            return [0, 1]  # the pair decodes side by side
        if started >= self.budget or self._decided([keys.get(i) for i in range(started)]):
            return []
        return [started]

    @staticmethod
    def _decided(keys: Sequence[str | None]) -> bool:
        top = leader(keys)
        return top is not None and sum(1 for k in keys if k == top) >= 2


Run = chain_module.Chain | SelfConsistency | BothWays


def chains_at_once(strategy: StrategySettings) -> int:
    """How many chains of one run a backend with slots should decode side by side."""
    if strategy.strategy == "chain":
        return 1
    if strategy.strategy == "both":
        return 2  # the pair; the rest come one at a time
    return strategy.k


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
    if strategy.strategy == "both":
        return BothWays(
            backend, settings, budget=strategy.k, temperature=strategy.temperature, expect=expect
        )
    return SelfConsistency(
        backend,
        settings,
        k=strategy.k,
        temperature=strategy.temperature,
        early_stop=strategy.early_stop,
        agree_n=strategy.agree_n,
        tie_breaks=strategy.tie_breaks,
        expect=expect,
    )
