"""The engine's pinned sequences: fixed prompt prefixes kept resident, loaded from disk or saved.

A pinned sequence holds one prefix (a system prompt and its layout) and never runs a
generation; requests starting with it copy its KV cells (kv_slots.plan_reuse picks it as the
donor; in llama.cpp's unified cache the copy shares the cells, it costs no memory).  Each
language, mode and tools setting has its own prefix and its own pin, so a chain in one does not
push out another's.  A prefix no pin holds is loaded from the prefix store (prefix_store.py)
when a file for it exists, else evaluated into a pin and then saved.

Everything here runs on the engine's decode thread: llama.cpp's context is not thread-safe.
"""

from __future__ import annotations

import ctypes
import logging
import threading
import time
from collections import deque
from typing import Any

from thinkchain.models.backends.engine_request import EngineRequest, Prefix
from thinkchain.models.backends.kv_slots import Slot
from thinkchain.models.backends.prefix_store import PrefixStore, state_key

log = logging.getLogger("thinkchain.prefix_pins")


class PrefixPins:
    def __init__(
        self,
        llama_cpp: Any,
        ctx: Any,
        mem: Any,
        slots: list[Slot],
        store: PrefixStore | None,
        identity: dict[str, Any],
        server: str,
    ) -> None:
        self._C = llama_cpp
        self._ctx = ctx
        self._mem = mem
        self._all = slots
        self.pins = [s for s in slots if s.pinned]
        self.store = store
        self._identity = identity
        self._server = server
        self._on_disk: set[str] = set()  # keys this process loaded or saved
        self.queue: deque[Prefix] = deque()  # to prepare ahead of time (engine lock held)

    def resident(self, prefix: Prefix, waiting: EngineRequest | None = None) -> None:
        """See that a sequence holds ``prefix`` or is evaluating it (engine lock held).

        Held already: nothing to do.  Saved on disk: loaded into a pin (milliseconds).  Else
        a pin evaluates it: at once for the ``waiting`` request, else in the background.
        """
        holder = self.holder(prefix)
        if holder is not None:
            req = holder.request
            if req is not None and req.prefill and waiting is not None and req.background:
                req.background = False  # a user waits for it now
                waiting.paid_prefix = True
            self.touch(holder)
            return
        if self.load(prefix) is not None:
            return
        busy = any(s.request is not None and s.request.prefill for s in self.pins)
        if waiting is None and busy:
            self.queue.appendleft(prefix)  # one evaluation ahead of time at a time
            return
        pin = self.take()
        if pin is None:
            return  # every pin is busy: the request evaluates the prefix itself
        req = EngineRequest(
            tokens=list(prefix.tokens),
            max_tokens=0,
            temperature=0.0,
            seed=0,
            emit=lambda item: None,
            stop=threading.Event(),
            server=self._server,
            prefix=prefix,
            prefill=True,
            background=waiting is None,
        )
        req.slot = pin.seq_id
        req.pending = list(prefix.tokens)
        pin.request = req
        self.touch(pin)
        if waiting is not None:
            waiting.paid_prefix = True

    def prepare_next(self, longest: int) -> None:
        """Take one queued preparation (engine lock held); longer prefixes are skipped."""
        if self.queue:
            prefix = self.queue.popleft()
            if len(prefix.tokens) <= longest:
                self.resident(prefix)

    def holder(self, prefix: Prefix) -> Slot | None:
        """A sequence that holds ``prefix`` already, or a pin evaluating it right now."""
        want = list(prefix.tokens)
        n = len(want)
        for slot in [*self.pins, *self._all]:  # a pin first: its use keeps it resident
            if len(slot.tokens) >= n and slot.tokens[:n] == want:
                return slot
            req = slot.request
            if slot.pinned and req is not None and req.prefill and req.prefix == prefix:
                return slot
        return None

    def touch(self, slot: Slot) -> None:
        if slot.pinned:
            slot.used = time.monotonic()

    def take(self) -> Slot | None:
        """A pin to put a new prefix in: an empty one, else the least recently used idle one
        (its prefix is dropped); None while every pin is evaluating."""
        idle = [p for p in self.pins if p.request is None]
        if not idle:
            return None
        pin = min(idle, key=lambda p: (bool(p.tokens), p.used))
        self.empty(pin)
        return pin

    def empty(self, pin: Slot) -> None:
        self._C.llama_memory_seq_rm(self._mem, pin.seq_id, 0, -1)
        pin.tokens = []

    def key(self, prefix: Prefix) -> str:
        return state_key(self._identity, prefix.tokens)

    def load(self, prefix: Prefix) -> Slot | None:
        """Put ``prefix`` into a pin from its saved state; None when there is no usable file
        (a file llama.cpp refuses, or holding other tokens, is deleted: it is saved anew)."""
        if self.store is None or not self.pins:
            return None
        key = self.key(prefix)
        path = self.store.find(key)
        if path is None:
            return None
        pin = self.take()
        if pin is None:
            return None
        n = len(prefix.tokens)
        tokens = (self._C.llama_token * n)()
        count = ctypes.c_size_t(0)
        read = self._C.llama_state_seq_load_file(
            self._ctx, str(path).encode(), pin.seq_id, tokens, n, ctypes.byref(count)
        )
        if read == 0 or count.value != n or list(tokens[:n]) != list(prefix.tokens):
            self.empty(pin)
            self.store.discard(path)
            return None
        pin.tokens = list(prefix.tokens)
        self.touch(pin)
        self._on_disk.add(key)
        return pin

    def save(self, pin: Slot, prefix: Prefix) -> None:
        """Save a pin's freshly evaluated prefix to the store (once per process and key)."""
        if self.store is None:
            return
        key = self.key(prefix)
        if key in self._on_disk:
            return
        n = len(prefix.tokens)
        tokens = (self._C.llama_token * n)(*prefix.tokens)

        def write(path: Any) -> bool:
            written = self._C.llama_state_seq_save_file(
                self._ctx, str(path).encode(), pin.seq_id, tokens, n
            )
            return bool(written)

        if self.store.save(key, write) is not None:
            self._on_disk.add(key)

    def drop_idle(self) -> bool:
        """Free the cells of every idle pin (the cache is full); True if any held some."""
        freed = False
        for pin in self.pins:
            if pin.request is None and pin.tokens:
                self.empty(pin)
                freed = True
        return freed
