"""Ctrl-C while a chain runs in the terminal: the first stops it cleanly, a second exits."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from thinkchain.chain.cancel import CancelToken
from thinkchain.cli.options import err_console


@contextmanager
def ctrl_c_cancels(cancel: CancelToken) -> Iterator[None]:
    """First Ctrl-C stops the chain cleanly (finished steps stay shown); a second one exits."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_sigint(signum: int, frame: object) -> None:
        if cancel.cancelled:
            raise KeyboardInterrupt
        err_console.print("\n[yellow]stopping… (Ctrl-C again to quit at once)[/]", markup=True)
        cancel.cancel()

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
