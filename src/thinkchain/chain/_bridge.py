"""Run async event streams from plain synchronous code.

One daemon thread per process runs an event loop for every synchronous caller.  Keeping a
single loop matters: HTTP clients and their connection pools belong to the loop that made
them, so they can be reused across chains instead of reconnecting each time.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Coroutine, Iterator, Sequence
from typing import Any, Generic, TypeVar

from thinkchain.chain.cancel import CancelToken

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None

_DONE = object()


def background_loop() -> asyncio.AbstractEventLoop:
    """The shared loop, started on first use."""
    global _loop
    with _lock:
        if _loop is None or _loop.is_closed():
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name="thinkchain-loop", daemon=True)
            thread.start()
            _loop = loop
        return _loop


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on the shared loop and wait for its result."""
    return asyncio.run_coroutine_threadsafe(coro, background_loop()).result()


def iterate_sync(
    make_stream: Callable[[], AsyncIterator[T]], on_abandon: Callable[[], None] | None = None
) -> Iterator[T]:
    """Iterate an async stream from synchronous code, item by item, as items arrive.

    When the caller stops iterating early (``break``, ``close()``, garbage collection),
    ``on_abandon`` runs first (so the producer can end cleanly, e.g. by cancelling a chain),
    then the stream is closed.
    """
    loop = background_loop()
    items: queue.SimpleQueue[Any] = queue.SimpleQueue()

    async def pump() -> None:
        stream = make_stream()
        try:
            async for item in stream:
                items.put(item)
        except BaseException as err:  # handed to the caller's thread, raised there
            items.put(_Raised(err))
            if isinstance(err, (KeyboardInterrupt, SystemExit)):
                raise
        finally:
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                await aclose()
            items.put(_DONE)

    future = asyncio.run_coroutine_threadsafe(pump(), loop)
    finished = False
    try:
        while True:
            item = items.get()
            if item is _DONE:
                finished = True
                return
            if isinstance(item, _Raised):
                finished = True
                if isinstance(item.error, asyncio.CancelledError):
                    return
                raise item.error
            yield item
    finally:
        if not finished:
            if on_abandon is not None:
                on_abandon()
            else:
                future.cancel()
            # Wait for the producer to wind down so no work outlives the caller's interest.
            try:
                future.result(timeout=30)
            except BaseException:
                pass


class _Raised:
    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


E = TypeVar("E")
R = TypeVar("R")


class EventRunner(Generic[E, R]):
    """The four ways to consume something that answers a question with a stream of events
    ending in one result: ``astream`` (defined by the subclass), ``arun``, ``stream`` and
    ``run``.  The sync forms run on the shared background loop; abandoning ``stream``
    cancels the run through its CancelToken."""

    def astream(
        self,
        question: str,
        *,
        context: Sequence[dict[str, str]] = (),
        cancel: CancelToken | None = None,
    ) -> AsyncGenerator[E, None]:
        raise NotImplementedError

    def _result(self, event: E) -> R | None:
        """The result carried by ``event`` if it is the last event, else None."""
        raise NotImplementedError

    async def arun(
        self,
        question: str,
        *,
        context: Sequence[dict[str, str]] = (),
        cancel: CancelToken | None = None,
    ) -> R:
        async for event in self.astream(question, context=context, cancel=cancel):
            result = self._result(event)
            if result is not None:
                return result
        raise AssertionError("the event stream ended without its result")

    def stream(
        self,
        question: str,
        *,
        context: Sequence[dict[str, str]] = (),
        cancel: CancelToken | None = None,
    ) -> Iterator[E]:
        """The events as they happen, for synchronous code."""
        token = cancel or CancelToken()
        return iterate_sync(
            lambda: self.astream(question, context=context, cancel=token),
            on_abandon=token.cancel,
        )

    def run(
        self,
        question: str,
        *,
        context: Sequence[dict[str, str]] = (),
        cancel: CancelToken | None = None,
    ) -> R:
        """Consume the whole stream; return its result (failures return, they do not raise)."""
        for event in self.stream(question, context=context, cancel=cancel):
            result = self._result(event)
            if result is not None:
                return result
        raise AssertionError("the event stream ended without its result")
