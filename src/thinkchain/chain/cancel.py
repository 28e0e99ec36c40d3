"""Cancellation that works from any thread: a Stop button, a signal handler, a closed socket."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable


class CancelToken:
    """Call :meth:`cancel` from anywhere; running chains that hold the token stop at once.

    A chain registers a callback while it runs; the callback is scheduled on the chain's own
    event loop, so a call from another thread is safe.
    """

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._callbacks: list[tuple[asyncio.AbstractEventLoop, Callable[[], None]]] = []

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def cancel(self) -> None:
        with self._lock:
            if self._event.is_set():
                return
            self._event.set()
            callbacks = list(self._callbacks)
        for loop, callback in callbacks:
            if loop.is_closed():
                continue
            try:
                loop.call_soon_threadsafe(callback)
            except RuntimeError:  # the loop closed between the check and the call
                pass

    def register(self, loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> None:
        with self._lock:
            self._callbacks.append((loop, callback))
            already = self._event.is_set()
        if already:
            loop.call_soon_threadsafe(callback)

    def unregister(self, callback: Callable[[], None]) -> None:
        with self._lock:
            self._callbacks = [(lp, cb) for lp, cb in self._callbacks if cb is not callback]
