"""The embedded backend: a GGUF model run in-process by llama.cpp (llama-cpp-python).

Why we drive ``Llama.generate`` ourselves instead of ``create_chat_completion``:

* KV reuse is visible and measurable: we render the chat template and tokenize the prompt,
  so we know exactly how many prompt tokens are already in the KV cache (a chain's prompt
  only ever grows by the last step, so each call evaluates only the new tokens);
* schemas are enforced by an llguidance token mask at full decode speed (llama.cpp's own
  JSON grammar is the fallback) and generation stops the moment the JSON object is complete;
* cancellation takes effect between two tokens.

llama.cpp is not thread-safe and decodes one sequence at a time here, so generations are
serialised by a lock and run in a worker thread; the event loop stays free.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import os
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from ..events import Usage
from . import schema_mask
from .base import (
    BackendError,
    Chunk,
    Completion,
    ContextOverflow,
    GenerationRequest,
    Message,
    RequestRejected,
    TextChunk,
)

DEFAULT_CONTEXT = 8192

_GGUF_MAGIC = b"GGUF"


class ModelLoadError(BackendError):
    """The model file is missing, not a GGUF file, or llama.cpp cannot load it."""


def check_gguf(path: Path) -> None:
    """Fail with one clear sentence before llama.cpp gets a chance to print pages of logs."""
    if not path.exists():
        raise ModelLoadError(f"model file not found: {path}")
    if not path.is_file():
        raise ModelLoadError(f"model path is not a file: {path}")
    with path.open("rb") as fh:
        magic = fh.read(4)
    if magic != _GGUF_MAGIC:
        raise ModelLoadError(f"not a GGUF model file (bad header): {path}")


class _End:
    __slots__ = ()


_END = _End()


class _Failure:
    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


class LlamaCppBackend:
    """A GGUF model in this process.  Loading takes a few seconds; reuse the instance."""

    # One sequence at a time: callers that could run requests side by side (self-consistency)
    # run them one after another instead, which keeps the shared prefix in the KV cache.
    max_parallel = 1

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        *,
        n_ctx: int = DEFAULT_CONTEXT,
        n_threads: int | None = None,
        n_batch: int = 512,
        seed: int = 0,
        use_schema_mask: bool = True,
        model_name: str | None = None,
        verbose: bool = False,
    ) -> None:
        path = Path(model_path).expanduser()
        check_gguf(path)
        try:
            from llama_cpp import Llama
        except ImportError as err:  # pragma: no cover - depends on the install
            raise ModelLoadError(
                "the embedded model needs llama-cpp-python: pip install 'thinkchain[embedded]'"
            ) from err
        threads = n_threads or os.cpu_count() or 1
        try:
            self._llama = Llama(
                model_path=str(path),
                n_ctx=n_ctx,
                n_threads=threads,
                n_threads_batch=threads,
                n_batch=n_batch,
                seed=seed,
                verbose=verbose,
            )
        except (ValueError, RuntimeError, OSError) as err:
            raise ModelLoadError(f"llama.cpp could not load {path}: {err}") from err
        self.path = path
        self._model_name = model_name or path.stem
        self._n_ctx = self._llama.n_ctx()
        self._lock = threading.Lock()
        # One worker thread: llama.cpp runs one generation at a time anyway.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="thinkchain-llama")
        self._formatter = self._make_formatter()
        vocab = self._llama._model.vocab
        import llama_cpp

        self._eog = {
            t for t in range(self._llama.n_vocab()) if llama_cpp.llama_vocab_is_eog(vocab, t)
        }
        self._use_mask = use_schema_mask and schema_mask.available()
        self._masker: schema_mask.TokenMasker | None = None
        self._masker_lock = threading.Lock()
        # Prompt tokens evaluated and reused by the last generation, for benchmarks.
        self.last_usage: Usage | None = None

    # -- protocol -----------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return f"llama.cpp:{self._model_name}"

    @property
    def model(self) -> str:
        return self._model_name

    def context_window(self) -> int:
        return self._n_ctx

    def count_tokens(self, messages: Sequence[Message]) -> int:
        return len(self._tokenize(self.render(messages)))

    async def generate(self, request: GenerationRequest) -> AsyncIterator[Chunk]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        stop = threading.Event()

        def put(item: Any) -> None:
            with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is listening
                loop.call_soon_threadsafe(queue.put_nowait, item)

        def work() -> None:
            try:
                for item in self.generate_sync(request, stop):
                    put(item)
            except BaseException as err:
                put(_Failure(err))
            finally:
                put(_END)

        future = loop.run_in_executor(self._executor, work)
        try:
            while True:
                item = await queue.get()
                if item is _END:
                    break
                if isinstance(item, _Failure):
                    if isinstance(item.error, BackendError):
                        raise item.error
                    raise BackendError(
                        f"llama.cpp failed: {type(item.error).__name__}: {item.error}",
                        server=self.name,
                    ) from item.error
                yield item
        finally:
            stop.set()
            # Let the worker reach its next token and release the model before returning,
            # so the next generation never waits on a stale one.
            with contextlib.suppress(BaseException):
                await asyncio.shield(future)

    # -- work done in the worker thread ---------------------------------------------------------

    def render(self, messages: Sequence[Message]) -> str:
        result = self._formatter(messages=[dict(m) for m in messages])
        return str(result.prompt)

    def _tokenize(self, text: str) -> list[int]:
        return self._llama.tokenize(text.encode("utf-8"), add_bos=self._add_bos, special=True)

    def generate_sync(
        self, request: GenerationRequest, stop: threading.Event | None = None
    ) -> Iterator[Chunk]:
        """Blocking generation: text chunks, then one Completion.  Thread-safe (serialised)."""
        stop = stop or threading.Event()
        with self._lock:
            yield from self._generate_locked(request, stop)

    def _generate_locked(
        self, request: GenerationRequest, stop: threading.Event
    ) -> Iterator[Chunk]:
        llama = self._llama
        tokens = self._tokenize(self.render(request.messages))
        if len(tokens) >= self._n_ctx:
            raise ContextOverflow(
                f"the prompt has {len(tokens):,} tokens; the model's context holds {self._n_ctx:,}",
                server=self.name,
            )
        max_tokens = max(1, min(request.max_tokens, self._n_ctx - len(tokens)))
        cached = self._cached_prefix(tokens)
        sampling = self._constraint(request)
        logits_processor = None
        grammar = None
        if isinstance(sampling, schema_mask.MaskedSampling):
            logits_processor = [sampling.logits_processor]
        elif sampling is not None:
            grammar = sampling
        if request.seed is not None:
            llama.set_seed(request.seed)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        produced = 0
        finish = "length"
        generator = llama.generate(
            tokens,
            temp=request.temperature,
            logits_processor=logits_processor,  # type: ignore[arg-type]
            grammar=grammar,
        )
        try:
            for token in generator:
                if stop.is_set():
                    finish = "cancelled"
                    break
                if token in self._eog:
                    finish = "stop"
                    break
                produced += 1
                masked = isinstance(sampling, schema_mask.MaskedSampling)
                if masked and not sampling.advance(token):
                    raise BackendError(
                        f"schema mask lost track of the output: {sampling.error}",
                        server=self.name,
                    )
                text = decoder.decode(llama.detokenize([token], special=False))
                if text:
                    yield TextChunk(text)
                if masked and sampling.finished:
                    finish = "stop"
                    break
                if produced >= max_tokens:
                    break
        finally:
            generator.close()
        tail = decoder.decode(b"", final=True)
        if tail:
            yield TextChunk(tail)
        usage = Usage(prompt_tokens=len(tokens), completion_tokens=produced, cached_tokens=cached)
        self.last_usage = usage
        yield Completion(
            usage=usage,
            finish_reason=finish,
            server=self.name,
            schema_enforced=sampling is not None,
        )

    def _cached_prefix(self, tokens: list[int]) -> int:
        """How many leading prompt tokens llama.cpp will find already in its KV cache."""
        n = self._llama.n_tokens
        if n == 0:
            return 0
        previous = np.asarray(self._llama.input_ids[:n])
        length = min(len(previous), len(tokens))
        if length == 0:
            return 0
        mismatch = np.nonzero(previous[:length] != np.asarray(tokens[:length]))[0]
        prefix = int(mismatch[0]) if mismatch.size else length
        # A fully cached prompt still re-evaluates its last token to get fresh logits.
        return prefix - 1 if prefix == len(tokens) else prefix

    def _constraint(self, request: GenerationRequest) -> Any:
        lark = request.extra.get("lark")
        regex = request.extra.get("regex")
        if request.schema is None and lark is None and regex is None:
            return None
        if self._use_mask:
            masker = self._get_masker()
            if lark is not None:
                grammar = masker.grammar_for_lark(lark)
            elif regex is not None:
                grammar = masker.grammar_for_regex(regex)
            else:
                grammar = masker.grammar_for_schema(request.schema)  # type: ignore[arg-type]
            try:
                return masker.matcher(grammar)
            except ValueError as err:
                raise RequestRejected(str(err), server=self.name) from err
        if lark is not None or regex is not None:
            return None  # no llguidance: free text, parsed leniently afterwards
        import json

        from llama_cpp import LlamaGrammar

        return LlamaGrammar.from_json_schema(json.dumps(request.schema), verbose=False)

    def _get_masker(self) -> schema_mask.TokenMasker:
        with self._masker_lock:
            if self._masker is None:
                self._masker = schema_mask.TokenMasker(
                    self._llama._model.vocab, self._llama.n_vocab(), sorted(self._eog)
                )
            return self._masker

    def _make_formatter(self) -> Any:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        template = self._llama.metadata.get("tokenizer.chat_template")
        if not template:
            raise ModelLoadError(f"{self.path.name} has no chat template in its metadata")
        vocab = self._llama._model
        bos = vocab.token_get_text(vocab.token_bos()) if vocab.token_bos() >= 0 else ""
        eos = vocab.token_get_text(vocab.token_eos()) if vocab.token_eos() >= 0 else ""
        # If the template writes the BOS text itself, the tokenizer must not add another.
        self._add_bos = "bos_token" not in template
        return Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        with self._lock:
            self._llama.close()
