"""A run behind the web page: a thread consumes its events, the page reads snapshots.

Streamlit reruns the page script on every click, and a rerun interrupts whatever the script
was doing.  So the run (a chain, or a strategy's chains) does not go on inside the script: a
:class:`LiveRun` consumes its events on a thread of its own, feeds them to the history
recorder, and folds them into the run's view (``chain.run_view.RunView``).  The page only
draws snapshots of that view, every fraction of a second while it runs; clicking Stop cancels
the run, and any other rerun simply picks the run up again where it is.  Nothing here imports
Streamlit.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from thinkchain.chain.cancel import CancelToken
from thinkchain.chain.events import ChainError, ChainFailed, ChainResult, RunEvent
from thinkchain.chain.run_view import RunView
from thinkchain.history import ChainRecord, ChainRecorder


class LiveRun:
    """One chain consumed on a background thread.  Start it, read snapshots, stop it."""

    def __init__(
        self,
        question: str,
        events: Callable[[CancelToken], Iterator[RunEvent]],
        recorder: ChainRecorder | None = None,
        *,
        backend: str = "",
        settings: dict[str, Any] | None = None,
    ) -> None:
        self.question = question
        self._events = events
        self.recorder = recorder
        self.backend = backend
        self.settings = settings or {}
        self.created_at = time.time()
        self.cancel_token = CancelToken()
        self._view = RunView(question=question)
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._consume, name="thinkchain-ui-run", daemon=True)

    @property
    def chain_id(self) -> str | None:
        return self.recorder.chain_id if self.recorder else None

    @property
    def conversation(self) -> str:
        """The id of the conversation the chain is a turn of ("" when it is not recorded)."""
        return self.recorder.conversation if self.recorder else ""

    def start(self) -> LiveRun:
        self._thread.start()
        return self

    def _consume(self) -> None:
        stream = self._events(self.cancel_token)
        try:
            for event in stream:
                with self._lock:
                    self._view.apply(event)
                if self.recorder is not None:
                    self.recorder.handle(event)
        except Exception as err:  # the run never raises; a bug here must still end it
            with self._lock:
                view = self._view
                shown = view.shown or view.chains[0]
                result = ChainResult(question=view.question, lang="", steps=list(shown.steps))
                view.apply(ChainFailed(ChainError("backend_error", repr(err)), result))
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()
            if self.recorder is not None:
                # The run counts as done once its history is written (or has failed), so
                # the page can say whether it was saved.
                self.recorder.close(wait=True, timeout=None)

    def snapshot(self) -> RunView:
        """A copy of the view that the run's thread will not change under the reader."""
        with self._lock:
            return copy.deepcopy(self._view)

    def record(self) -> ChainRecord | None:
        """The finished chain as the history keeps it; None while it runs."""
        view = self.snapshot()
        if view.result is None:
            return None
        return ChainRecord.from_result(
            view.result,
            chain_id=self.chain_id or "",
            created_at=self.created_at,
            backend=self.backend,
            source="ui",
            settings=self.settings,
            conversation=self.conversation,
        )

    @property
    def history_error(self) -> str | None:
        return self.recorder.error if self.recorder is not None else None

    @property
    def done(self) -> bool:
        return not self._thread.is_alive() and self._thread.ident is not None

    def wait(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return self.done
