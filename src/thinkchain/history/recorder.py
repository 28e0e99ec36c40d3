"""Write a chain into the history while it runs, from its events alone.

The recorder is fed every event of a chain and turns the ones that matter into writes: the
chain's row when it starts, each finished step the moment it is done, the answer, and the
outcome.  Writes happen on a thread of their own, so a slow or locked database never holds
up the chain or the page that shows it; when the database cannot be written, the writes wait
and are tried again with the next one, and :attr:`ChainRecorder.error` says what went wrong.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

from thinkchain.chain.events import (
    AnswerDone,
    ChainCompleted,
    ChainFailed,
    ChainResult,
    ChainStarted,
    FinalAnswer,
    RunEvent,
    Step,
    StepDone,
)
from thinkchain.chain.settings import ChainSettings
from thinkchain.history.record import stats_of, status_of
from thinkchain.history.store import HistoryError, HistoryStore, new_id

_Write = Callable[[HistoryStore], None]
_CLOSE = object()


class ChainRecorder:
    """Records one chain.  ``handle`` never blocks on the database and never raises."""

    def __init__(
        self,
        path: Path | str | None = None,
        *,
        chain_id: str | None = None,
        backend: str = "",
        source: str = "",
        settings: ChainSettings | None = None,
        paired_with: str | None = None,
        conversation: str | None = None,
        timeout: float | None = None,
    ) -> None:
        """``conversation``: the id of the first chain of the conversation this one continues."""
        self.path = path
        self.chain_id = chain_id or new_id()
        # A direct answer belongs where the chain it is compared with does.
        self.conversation = conversation or paired_with or self.chain_id
        self.backend = backend
        self.source = source
        self.settings = settings.model_dump() if settings is not None else {}
        self.paired_with = paired_with
        self.timeout = timeout
        self.created_at = time.time()
        self.error: str | None = None  # the last reason a write failed, for people
        self.saved_steps = 0
        self._steps_given = 0  # steps handed to the writer, saved or not yet
        self._answer_given = False
        self._started = False
        self._closed = False
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._done = threading.Event()

    # -- events -> writes ---------------------------------------------------------------------

    def handle(self, event: RunEvent) -> None:
        """A run's event: a chain's own are saved as they come; a strategy's chains are not
        kept, the one it chose is, whole, when the run ends."""
        if isinstance(event, ChainStarted):
            self._start(event.question, event.lang, event.model, event.mode)
        elif isinstance(event, StepDone):
            self._add_step(event.step)
        elif isinstance(event, AnswerDone):
            self._set_answer(event.answer)
        elif isinstance(event, (ChainCompleted, ChainFailed)):
            self._finish(event.result)

    def _add_step(self, step: Step) -> None:
        self._steps_given += 1
        self._put(lambda store: store.add_step(self.chain_id, step), counts_step=True)

    def _set_answer(self, answer: FinalAnswer) -> None:
        self._answer_given = True
        self._put(lambda store: store.set_answer(self.chain_id, answer))

    def _start(self, question: str, lang: str, model: str, mode: str) -> None:
        self._started = True
        created_at = self.created_at

        def write(store: HistoryStore) -> None:
            store.start_chain(
                self.chain_id,
                question,
                lang=lang,
                model=model,
                mode=mode,
                backend=self.backend,
                source=self.source,
                settings=self.settings,
                paired_with=self.paired_with,
                created_at=created_at,
                conversation=self.conversation,
            )

        self._put(write)

    def _finish(self, result: ChainResult) -> None:
        if not self._started:
            # Refused before anything ran (an empty question, say): nothing worth keeping.
            if result.error is not None and result.error.kind == "invalid_input":
                self.close()
                return
            self._start(result.question, result.lang, result.model, result.mode)
        # A run that streamed none of its chosen chain here (a strategy's) gives it whole.
        for step in result.steps[self._steps_given :]:
            self._add_step(step)
        if result.answer is not None and not self._answer_given:
            self._set_answer(result.answer)

        def write(store: HistoryStore) -> None:
            store.finish_chain(
                self.chain_id,
                status=status_of(result),
                error=result.error,
                seconds=result.seconds,
                usage=result.usage,
                stats=stats_of(result),
                question=result.question,
                lang=result.lang,
            )

        self._put(write)
        self.close(wait=False)

    # -- the writer thread --------------------------------------------------------------------

    def _put(self, write: _Write, *, counts_step: bool = False) -> None:
        if self._closed:
            return
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._write_all, name=f"thinkchain-history-{self.chain_id}", daemon=True
            )
            self._thread.start()
        self._queue.put((write, counts_step))

    def close(self, *, wait: bool = True, timeout: float | None = 30.0) -> None:
        """No more events; with ``wait``, return once every write is done (or failed)."""
        if not self._closed:
            self._closed = True
            if self._thread is None:
                self._done.set()
            else:
                self._queue.put(_CLOSE)
        if wait:
            self._done.wait(timeout)

    def _write_all(self) -> None:
        pending: deque[tuple[_Write, bool]] = deque()
        store: HistoryStore | None = None
        closing = False
        try:
            while not closing:
                item = self._queue.get()
                while True:
                    if item is _CLOSE:
                        closing = True
                    else:
                        pending.append(item)  # type: ignore[arg-type]
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                store = self._flush(pending, store)
        finally:
            if store is not None:
                store.close()
            if pending and self.error is not None:
                self.error += f"; {len(pending)} write(s) of this chain were not saved"
            self._done.set()

    def _flush(
        self, pending: deque[tuple[_Write, bool]], store: HistoryStore | None
    ) -> HistoryStore | None:
        """Write in order until one fails; what failed stays first in line for the next try."""
        while pending:
            write, counts_step = pending[0]
            try:
                if store is None:
                    store = HistoryStore(self.path, timeout=self.timeout)
                write(store)
            except HistoryError as err:
                self.error = str(err)
                return store
            except Exception as err:  # never let the history break a chain
                self.error = f"the history could not be written: {type(err).__name__}: {err}"
                pending.popleft()
                continue
            pending.popleft()
            if counts_step:
                self.saved_steps += 1
            self.error = None
        return store
