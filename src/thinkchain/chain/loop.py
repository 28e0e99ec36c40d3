"""A reasoning chain: one question in, typed events out.

This module runs one chain: it cleans the question, picks the shape for the chain's mode
(``shapes.SHAPES``), runs it, then verification when asked for, and ends the stream with
exactly one terminal event that carries every finished step, whatever happened: an error,
cancellation, the time budget, or a bug.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Sequence
from time import perf_counter
from typing import Any

from thinkchain.chain import _bridge
from thinkchain.chain.backend import Backend, Message
from thinkchain.chain.cancel import CancelToken
from thinkchain.chain.events import (
    ChainCompleted,
    ChainError,
    ChainEvent,
    ChainFailed,
    ChainResult,
    ErrorKind,
)
from thinkchain.chain.lang import resolve_lang
from thinkchain.chain.model_calls import ChainStop, ModelCalls
from thinkchain.chain.questions import InvalidQuestion, clean_question
from thinkchain.chain.settings import ChainSettings
from thinkchain.chain.shapes import SHAPES
from thinkchain.chain.shapes.verification import verify

__all__ = ["Chain", "ChainRun", "InvalidQuestion", "clean_question"]


class ChainRun:
    """One chain while it runs, in its own asyncio task: queue, cancel, deadline, terminal."""

    def __init__(
        self,
        backend: Backend,
        settings: ChainSettings,
        question: str,
        context: Sequence[Message],
        cancel: CancelToken | None,
        queue: asyncio.Queue[ChainEvent],
    ) -> None:
        self.settings = settings
        self.raw_question = question
        self.cancel_token = cancel
        self.queue = queue
        self.interrupt: ErrorKind | None = None
        self.task: asyncio.Task[None] | None = None
        lang = settings.lang if settings.lang != "auto" else "en"
        self.result = ChainResult(
            question=question, lang=lang, model=backend.model, mode=settings.mode
        )
        self.calls = ModelCalls(backend, settings, self.result, context, queue.put_nowait)

    def stop_now(self, kind: ErrorKind) -> None:
        """Interrupt the run from outside the loop (cancel token, deadline, abandoned stream)."""
        if self.interrupt is None:
            self.interrupt = kind
            if self.task is not None and not self.task.done():
                self.task.cancel()

    def _on_cancel(self) -> None:
        self.stop_now("cancelled")

    async def main(self) -> None:
        self.task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        started = perf_counter()
        deadline_handle = None
        if self.settings.max_seconds is not None:
            deadline_handle = loop.call_later(
                self.settings.max_seconds, self.stop_now, "time_budget"
            )
        if self.cancel_token is not None:
            self.cancel_token.register(loop, self._on_cancel)
        error: ChainError | None = None
        try:
            await self._run()
        except ChainStop as stop:
            error = stop.error
        except asyncio.CancelledError:
            error = self._interrupt_error()
        except Exception as err:  # a bug or a backend that broke its contract: report, never raise
            error = ChainError("backend_error", f"unexpected {type(err).__name__}: {err}")
        finally:
            if deadline_handle is not None:
                deadline_handle.cancel()
            if self.cancel_token is not None:
                self.cancel_token.unregister(self._on_cancel)
            self.result.seconds = perf_counter() - started
            if error is None and self.result.answer is None:
                error = self._interrupt_error()
            self.result.error = error
            if error is None:
                self.queue.put_nowait(ChainCompleted(self.result))
            else:
                self.queue.put_nowait(ChainFailed(error, self.result))

    def _interrupt_error(self) -> ChainError:
        kind = self.interrupt or "cancelled"
        if kind == "time_budget":
            return ChainError(
                kind, f"the time budget of {self.settings.max_seconds:g} seconds is spent"
            )
        return ChainError(kind, "the chain was cancelled")

    async def _run(self) -> None:
        s = self.settings
        try:
            question = clean_question(self.raw_question, s.max_question_chars)
            lang = resolve_lang(s.lang, question)
        except (InvalidQuestion, ValueError) as err:
            raise ChainStop("invalid_input", str(err)) from None
        self.result.question = question
        self.result.lang = lang
        await SHAPES[s.mode](self.calls, question, lang)
        if s.verify and self.result.answer is not None:
            await verify(self.calls)


class Chain(_bridge.EventRunner[ChainEvent, ChainResult]):
    """A reasoning chain over one backend.

    >>> chain = Chain(backend, ChainSettings(max_steps=10))
    >>> for event in chain.stream("How many r are in strawberry?"):
    ...     print(event)
    >>> result = chain.run("How many r are in strawberry?")

    ``astream``/``arun`` are the async forms; many chains may run at once against an HTTP
    backend.  Every stream ends with exactly one ChainCompleted or ChainFailed.
    """

    def __init__(
        self, backend: Backend, settings: ChainSettings | None = None, **overrides: Any
    ) -> None:
        if settings is None:
            settings = ChainSettings(**overrides)
        else:
            settings = settings.derive(**overrides)
        self.backend = backend
        self.settings = settings

    async def astream(
        self,
        question: str,
        *,
        context: Sequence[Message] = (),
        cancel: CancelToken | None = None,
    ) -> AsyncGenerator[ChainEvent, None]:
        queue: asyncio.Queue[ChainEvent] = asyncio.Queue()
        run = ChainRun(self.backend, self.settings, question, context, cancel, queue)
        task = asyncio.create_task(run.main(), name="thinkchain-chain")
        finished = False
        try:
            while True:
                event = await queue.get()
                yield event
                if isinstance(event, (ChainCompleted, ChainFailed)):
                    finished = True
                    break
        finally:
            if not finished:
                # The consumer stopped listening (closed the stream, disconnected, was
                # cancelled): stop generating at once rather than finishing unseen work.
                run.stop_now("cancelled")
            if not task.done():
                # Wait for the backend stream to close; our own cancellation still propagates.
                with contextlib.suppress(Exception):
                    await asyncio.shield(task)

    def _result(self, event: ChainEvent) -> ChainResult | None:
        return event.result if isinstance(event, (ChainCompleted, ChainFailed)) else None
