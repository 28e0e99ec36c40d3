"""A reasoning run behind an HTTP response, the same for chat completions and responses.

A run holds a chain slot until it is closed.  Served whole, the response waits for its
outcome; streamed, the response's headers wait for its first real output, so a run that fails
before producing anything (a question too long for the model, an upstream that is down) still
gets its proper status and an OpenAI-shaped error instead of a 200 stream.  The two APIs only
write the items out, each in its own shape.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field

from starlette.requests import Request

from thinkchain.chain.backend import Backend
from thinkchain.proxy import reasoning
from thinkchain.proxy.admission import ChainSlots
from thinkchain.proxy.errors import ProxyError, from_chain_error
from thinkchain.proxy.reasoning import Finished, Item, Outcome, Plan
from thinkchain.proxy.streaming import unless_disconnected

log = logging.getLogger("thinkchain.proxy")


@dataclass
class ReasoningRun:
    """One running chain and the slot it holds; closing it is safe to do more than once."""

    items: AsyncGenerator[Item, None]
    slots: ChainSlots
    model: str  # as the client named it, for the log
    plan: Plan
    started: float = field(default_factory=time.perf_counter)
    closed: bool = False

    @classmethod
    def start(
        cls, backend: Backend, plan: Plan, slots: ChainSlots, retry_after: int, model: str
    ) -> ReasoningRun:
        """Takes a chain slot (or answers 429) and starts the run."""
        slots.acquire(retry_after)
        return cls(reasoning.run(backend, plan), slots, model, plan)

    async def close(self) -> None:
        if not self.closed:
            self.closed = True
            try:
                await self.items.aclose()
            finally:
                self.slots.release()

    def finished(self, outcome: Outcome) -> None:
        """Logs the run's outcome; a failed run raises its error as the response's."""
        log_outcome(self.model, self.plan, outcome, self.started)
        if outcome.failed:
            assert outcome.error is not None
            raise from_chain_error(outcome.error)

    async def whole(self, request: Request) -> Outcome:
        """The run served whole: its outcome once it has ended (the slot freed at once)."""
        try:
            outcome = await unless_disconnected(request, _collect(self.items))
        finally:
            await self.close()
        self.finished(outcome)
        return outcome

    async def opened(self, request: Request) -> AsyncGenerator[Item, None]:
        """The run served as a stream, once it has something to show: every item, the first
        ones already here.  A run that failed before showing anything raises its error."""
        try:
            primed = await unless_disconnected(request, _prime(self.items))
        except BaseException:
            await self.close()
            raise
        last = primed[-1] if primed else None
        if isinstance(last, Finished) and last.outcome.failed:
            await self.close()
            self.finished(last.outcome)

        async def every_item() -> AsyncGenerator[Item, None]:
            for item in primed:
                yield item
            async for item in self.items:
                yield item

        return every_item()


async def _collect(items: AsyncIterator[Item]) -> Outcome:
    async for item in items:
        if isinstance(item, Finished):
            return item.outcome
    raise ProxyError(502, "the chain ended without a result", code="no_result")


async def _prime(items: AsyncIterator[Item]) -> list[Item]:
    """Items up to the first the client must see at once (notes about retries can wait)."""
    primed: list[Item] = []
    async for item in items:
        primed.append(item)
        if isinstance(item, Finished) or not getattr(item, "note", False):
            break
    return primed


def log_outcome(model: str, plan: Plan, outcome: Outcome, started: float) -> None:
    status = outcome.error.kind if outcome.error else "completed"
    log.info(
        "%s %s: %s, %d steps, %d tokens, %.1f s",
        model,
        plan.strategy.strategy,
        status,
        len(outcome.trace.get("steps", [])),
        outcome.usage.total_tokens,
        time.perf_counter() - started,
    )
