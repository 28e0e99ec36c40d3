"""A small continuous-batching decode engine on llama.cpp's low-level API.

Why not ``Llama.generate``: it decodes one sequence at a time.  On a CPU, decoding is bound
by reading the weights, so several sequences in one batch cost little more than one:
self-consistency samples, evaluation items and proxy requests share each pass over them.

The engine owns one llama.cpp context with ``n_parallel`` sequences ("slots") over a
unified KV cache, and one worker thread that loops: admit waiting requests into free slots
(reusing cached prefixes: kv_slots.py), put one token per decoding sequence (and chunks of
new prompts) into a batch, decode it, and sample each sequence's next token.  Besides the
slots, ``n_pinned`` sequences hold fixed prompt prefixes (system prompt and layout) for the
slots to copy: loaded from disk, or evaluated once and saved (prefix_pins.py).
"""

from __future__ import annotations

import codecs
import threading
import time
from collections import deque
from typing import Any

from thinkchain.chain.backend import BackendError, Completion, ContextOverflow, TextChunk
from thinkchain.chain.events import Usage
from thinkchain.models.backends.engine_request import EngineRequest, Prefix
from thinkchain.models.backends.kv_slots import Slot, plan_reuse
from thinkchain.models.backends.llama_sampling import TokenPieces, make_sampler
from thinkchain.models.backends.prefix_pins import PrefixPins
from thinkchain.models.backends.prefix_store import PrefixStore, context_layout

__all__ = ["DecodeEngine", "EngineRequest", "Prefix"]
BACKGROUND_CHUNK = 64  # prompt tokens a step: ~0.5 s of a 1.5B model on two cores


class DecodeEngine:
    def __init__(
        self,
        llama: Any,  # llama_cpp.Llama: the model, its vocab and tokenizer
        *,
        n_parallel: int,
        n_ctx: int,
        n_batch: int,
        n_threads: int,
        eog: set[int],
        name: str,
        n_pinned: int = 0,
        store: PrefixStore | None = None,
        identity: dict[str, Any] | None = None,
    ) -> None:
        import llama_cpp

        self._C = llama_cpp
        self._llama = llama
        self.name = name
        self.n_ctx = n_ctx
        self.n_batch = n_batch
        self._eog = eog
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = n_ctx
        params.n_batch = n_batch
        params.n_ubatch = n_batch
        params.n_seq_max = n_parallel + n_pinned
        params.n_threads = n_threads
        params.n_threads_batch = n_threads
        params.kv_unified = True  # one pool of cells: slots can share prefix cells
        params.no_perf = True
        ctx = llama_cpp.llama_init_from_model(llama._model.model, params)
        if not ctx:
            raise BackendError("llama.cpp could not create a context", server=name)
        self._ctx = ctx
        self._mem = llama_cpp.llama_get_memory(ctx)
        self._batch = llama_cpp.llama_batch_init(n_batch, 0, 1)
        self._slots = [Slot(i) for i in range(n_parallel)]
        self._slots += [Slot(n_parallel + i, pinned=True) for i in range(n_pinned)]
        self._pins = PrefixPins(
            llama_cpp,
            ctx,
            self._mem,
            self._slots,
            store,
            {**(identity or {}), "context": context_layout(params)},
            name,
        )
        self._piece = TokenPieces(llama._model.vocab)
        self._waiting: deque[EngineRequest] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="thinkchain-decode", daemon=True)
        self._thread.start()

    # -- public -------------------------------------------------------------------------------

    def submit(self, request: EngineRequest) -> None:
        with self._cond:
            if self._closed:
                raise BackendError("the model was closed", server=self.name)
            self._waiting.append(request)
            self._cond.notify()

    def prepare(self, prefix: Prefix) -> None:
        """Have ``prefix`` resident before it is asked for: loaded, or evaluated and saved."""
        with self._cond:
            if self._closed or not self._pins.pins:
                return
            self._pins.queue.append(prefix)
            self._cond.notify()

    def wake(self) -> None:
        """Look at the requests again (one was cancelled)."""
        with self._cond:
            self._cond.notify()

    def close(self) -> None:
        with self._cond:
            closed_before, self._closed = self._closed, True
            self._cond.notify()
        if closed_before:
            return  # closed by its owner, then again at exit: nothing is freed twice
        self._thread.join(timeout=30)
        self._C.llama_batch_free(self._batch)
        self._C.llama_free(self._ctx)

    def clear_cache(self, wait: float = 5.0) -> None:
        """Forget every cached prefix, pinned ones too (the store on disk stays): a cold start.

        A generation the caller has stopped can still be finishing on the decode thread; its
        sequence is cleared once it is idle, waiting up to ``wait`` seconds for that.
        """
        deadline = time.monotonic() + wait
        while True:
            with self._cond:
                self._pins.queue.clear()
                for slot in self._slots:
                    if slot.request is None and slot.tokens:
                        self._C.llama_memory_seq_rm(self._mem, slot.seq_id, 0, -1)
                        slot.tokens = []
                if not self._active() or time.monotonic() >= deadline:
                    return
            time.sleep(0.01)

    @property
    def cached_tokens(self) -> list[list[int]]:
        """What each slot's KV cells hold, pinned ones last (for tests and benchmarks)."""
        return [list(s.tokens) for s in self._slots]

    @property
    def pins(self) -> PrefixPins:
        return self._pins

    # -- the loop -----------------------------------------------------------------------------

    def _active(self) -> list[EngineRequest]:
        return [s.request for s in self._slots if s.request is not None]

    def _loop(self) -> None:
        while True:
            with self._cond:
                while (
                    not self._closed
                    and not self._waiting
                    and not self._active()
                    and not self._pins.queue
                ):
                    self._cond.wait()
                if self._closed:
                    for req in [*self._waiting, *self._active()]:
                        self._fail(req, BackendError("the model was closed", server=self.name))
                    return
                self._admit()
                self._pins.prepare_next(self.n_ctx // 2)
            try:
                self._drop_cancelled()
                if self._active():
                    self._step()
            except Exception as err:  # never let the worker die silently
                for req in self._active():
                    self._fail(req, err)

    def _admit(self) -> None:
        """Move waiting requests into free slots (called with the lock held)."""
        for _ in range(len(self._waiting)):
            free = [s for s in self._slots if s.request is None and not s.pinned]
            if not free:
                return
            req = self._waiting.popleft()
            if req.stop.is_set():
                self._finish(req, "cancelled", free_slot=False)
                continue
            if len(req.tokens) >= self.n_ctx:
                self._fail(
                    req,
                    ContextOverflow(
                        f"the prompt has {len(req.tokens):,} tokens; the context holds "
                        f"{self.n_ctx:,}",
                        server=self.name,
                    ),
                )
                continue
            if req.prefix is not None:
                self._pins.resident(req.prefix, waiting=req)
            plan = plan_reuse(self._slots, free, req.tokens)
            if plan is None:  # someone is evaluating a longer shared prefix: wait for it
                self._waiting.append(req)
                continue
            C = self._C
            best, reuse = plan.slot, plan.cached
            if plan.donor is not None:
                self._pins.touch(plan.donor)
                C.llama_memory_seq_rm(self._mem, best.seq_id, 0, -1)
                C.llama_memory_seq_cp(self._mem, plan.donor.seq_id, best.seq_id, 0, reuse)
                best.tokens = req.tokens[:reuse]
            if reuse >= len(req.tokens):
                reuse = len(req.tokens) - 1  # the last prompt token is decoded again for logits
            if not C.llama_memory_seq_rm(self._mem, best.seq_id, reuse, -1):
                C.llama_memory_seq_rm(self._mem, best.seq_id, 0, -1)
                reuse = 0
            best.tokens = best.tokens[:reuse]
            req.slot = best.seq_id
            req.cached = reuse
            req.pos = reuse
            req.pending = req.tokens[reuse:]
            req.sampler = make_sampler(self._llama, req)
            req.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
            best.request = req

    # -- pinned prefixes ----------------------------------------------------------------------

    def _prefilled(self, req: EngineRequest) -> None:
        """A pin finished evaluating its prefix: save it, and let requests copy it."""
        assert req.prefix is not None
        self._pins.save(self._slots[req.slot], req.prefix)
        self._release(req, True)

    def _drop_cancelled(self) -> None:
        with self._cond:
            waiting = [r for r in self._waiting if r.stop.is_set()]
            for req in waiting:
                self._waiting.remove(req)
        for req in waiting:
            self._finish(req, "cancelled", free_slot=False)
        for slot in self._slots:
            held = slot.request
            if held is not None and held.stop.is_set():
                self._finish(held, "cancelled")
            elif held is not None and held.halt is not None and held.halt.is_set():
                self._finish(held, "stop")

    def _step(self) -> None:
        C = self._C
        batch = self._batch
        n = 0
        sampling: list[EngineRequest] = []
        evaluated: dict[int, list[int]] = {}

        def add(token: int, pos: int, seq: int, logits: bool) -> None:
            nonlocal n
            batch.token[n] = token
            batch.pos[n] = pos
            batch.n_seq_id[n] = 1
            batch.seq_id[n][0] = seq
            batch.logits[n] = 1 if logits else 0
            evaluated.setdefault(seq, []).append(token)
            n += 1

        active = self._active()
        before = {id(r): (r.pos, r.next_token, list(r.pending), r.logit_index) for r in active}
        # Sequences that are decoding go first, one token each: their latency is what a
        # user watches.  New prompts fill the rest of the batch in chunks.
        for req in active:
            if req.next_token is not None and not req.pending:
                req.logit_index = n
                add(req.next_token, req.pos, req.slot, True)
                req.pos += 1
                req.next_token = None
                sampling.append(req)
        users = any(not r.background for r in active)
        for req in active:
            if not req.pending or n >= self.n_batch:
                continue
            if req.background and users:
                continue  # a prefix prepared ahead of time waits for every user request
            # ... and goes in small chunks, so that a question arriving meanwhile waits little.
            room = min(self.n_batch - n, BACKGROUND_CHUNK if req.background else self.n_batch)
            chunk, req.pending = req.pending[:room], req.pending[room:]
            for j, token in enumerate(chunk):
                last = not req.pending and j == len(chunk) - 1
                if last:
                    req.logit_index = n
                add(token, req.pos, req.slot, last)
                req.pos += 1
            if not req.pending:
                sampling.append(req)
        if n == 0:
            return
        batch.n_tokens = n
        rc = C.llama_decode(self._ctx, batch)
        if rc != 0:
            # Nothing was decoded: put every request back as it was, make room, try again.
            for req in active:
                req.pos, req.next_token, req.pending, req.logit_index = before[id(req)]
            self._make_room(rc)
            return
        for seq, tokens in evaluated.items():
            self._slots[seq].tokens.extend(tokens)
        for req in sampling:
            if req.prefill:
                self._prefilled(req)
            else:
                self._sample(req)

    def _make_room(self, rc: int) -> None:
        """The batch did not fit the KV cache: drop idle slots' cached prefixes, else give up
        on the request that needs the most room."""
        freed = False
        for slot in self._slots:
            if slot.request is None and slot.tokens and not slot.pinned:
                self._C.llama_memory_seq_rm(self._mem, slot.seq_id, 0, -1)
                slot.tokens = []
                freed = True
        if not freed:
            freed = self._pins.drop_idle()  # they come back from disk when next needed
        if not freed:
            victim = max(self._active(), key=lambda r: r.pos + len(r.pending))
            self._fail(
                victim,
                ContextOverflow(
                    f"the model's context ({self.n_ctx:,} tokens shared by {len(self._slots)} "
                    f"sequences) is full (llama_decode returned {rc})",
                    server=self.name,
                ),
            )

    def _sample(self, req: EngineRequest) -> None:
        if req.stop.is_set():
            self._finish(req, "cancelled")
            return
        if req.halt is not None and req.halt.is_set():
            self._finish(req, "stop")
            return
        token = int(self._C.llama_sampler_sample(req.sampler.sampler, self._ctx, req.logit_index))
        if token in self._eog:
            self._finish(req, "stop")
            return
        req.produced += 1
        req.out_tokens.append(token)
        masked = req.masked
        if masked is not None and not masked.advance(token):
            self._fail(
                req,
                BackendError(
                    f"schema mask lost track of the output: {masked.error}", server=self.name
                ),
            )
            return
        text = req.decoder.decode(self._piece(token))
        if text:
            req.emit(TextChunk(text))
        if masked is not None and masked.finished:
            self._finish(req, "stop")
        elif req.produced >= req.max_tokens or req.pos + 1 >= self.n_ctx:
            self._finish(req, "length")
        else:
            req.next_token = token

    def _finish(self, req: EngineRequest, reason: str, free_slot: bool = True) -> None:
        if req.decoder is not None:
            tail = req.decoder.decode(b"", final=True)
            if tail:
                req.emit(TextChunk(tail))
        cached = req.cached
        if req.paid_prefix and req.prefix is not None:
            cached = max(0, cached - len(req.prefix.tokens))
        usage = Usage(
            prompt_tokens=len(req.tokens), completion_tokens=req.produced, cached_tokens=cached
        )
        req.emit(
            Completion(
                usage=usage,
                finish_reason=reason,
                server=self.name,
                schema_enforced=req.masked is not None or req.grammar is not None,
            )
        )
        req.emit(None)  # end of stream
        self._release(req, free_slot)

    def _fail(self, req: EngineRequest, error: BaseException) -> None:
        req.emit(error)
        req.emit(None)
        self._release(req, True)

    def _release(self, req: EngineRequest, free_slot: bool) -> None:
        if req.sampler is not None:
            req.sampler.close()
            req.sampler = None
        if free_slot and req.slot >= 0:
            slot = self._slots[req.slot]
            if slot.request is req:
                slot.request = None
        req.slot = -1
