"""The voting driver under every strategy that decides between several chains.

:class:`Voting` starts chains (side by side where the backend serves several sequences at
once), wraps their events in ``InChain``, reads each answer (``ChainRead``), and ends with
``Decided`` and the chosen chain's ``ChainCompleted``/``ChainFailed``.  A strategy
(strategies.py) only says which chain to start next and when the vote is decided.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections import Counter
from collections.abc import AsyncGenerator, Sequence
from time import perf_counter

from thinkchain.chain import _bridge
from thinkchain.chain import loop as chain_module
from thinkchain.chain.answers import Expect, extract_answer, vote
from thinkchain.chain.backend import Backend, Message
from thinkchain.chain.cancel import CancelToken
from thinkchain.chain.events import (
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
from thinkchain.chain.settings import ChainSettings


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
    running).  ``expect`` is passed to :func:`~thinkchain.chain.answers.extract_answer` when the
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
