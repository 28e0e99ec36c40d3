"""Run a server in the foreground: Ctrl-C or SIGTERM stops it in order, never leaves it behind."""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterator

from thinkchain.models.serve.child_process import STOP_GRACE, ServerProcess
from thinkchain.models.serve.shared import ServeError


@contextlib.contextmanager
def _stop_signals() -> Iterator[list[int]]:
    """Collect SIGINT/SIGTERM instead of dying, so the server can be stopped in order."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def on_signal(signum: int, frame: object) -> None:
        received.append(signum)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def run_in_foreground(
    server: ServerProcess,
    *,
    ready_timeout: float,
    on_ready: Callable[[list[str]], None],
    on_stopping: Callable[[int], None] = lambda sig: None,
    grace: float = STOP_GRACE,
) -> int:
    """Start ``server``, call ``on_ready`` once it answers, and run until a signal or until it
    exits.  Returns 0 after a requested stop; raises ServeError if the server dies by itself.
    Whatever happens, the server and its children are gone when this returns."""
    with _stop_signals() as received:
        try:
            server.start()
            models = server.wait_ready(ready_timeout, should_stop=lambda: bool(received))
            if not received:
                on_ready(models)
            while not received and server.poll() is None:
                time.sleep(0.2)
            if received:
                on_stopping(received[0])
                # Forward what the user sent (vLLM and uvicorn treat SIGINT as "shut down").
                server.stop(received[0], grace, hurry=lambda: len(received) > 1)
                return 0
            server.stop()
            raise ServeError(
                f"the {server.name} exited with code {server.poll()}; "
                f"its last lines:\n{server.tail() or '(no output)'}"
            )
        finally:
            server.stop(grace=grace, hurry=lambda: len(received) > 1)
