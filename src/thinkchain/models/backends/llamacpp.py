"""The embedded backend: a GGUF model run in-process by llama.cpp (llama-cpp-python).

Why we render prompts and drive decoding ourselves instead of ``create_chat_completion``:

* KV reuse is visible and measurable: we tokenize the rendered chat, so we know exactly how
  many prompt tokens are already in the KV cache (a chain's prompt only grows by the last
  step, so each call evaluates only the new tokens);
* schemas and envelopes are enforced by an llguidance token mask at full decode speed
  (llama.cpp's own JSON grammar is the fallback), and generation stops the moment the JSON
  object is complete;
* several generations decode together in one batch (``n_parallel``; see llama_engine.py);
* cancellation takes effect between two tokens;
* the fixed start of every chain's prompt (system prompt and layout, up to the user's turn)
  is kept in pinned sequences and on disk (prefix_pins.py, prefix_store.py): a new process
  loads it in milliseconds instead of evaluating it for seconds.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import itertools
import json
import os
import queue
import threading
import weakref
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

from thinkchain.chain.backend import (
    BackendError,
    Capabilities,
    Chunk,
    Completion,
    GenerationRequest,
    Message,
    RequestRejected,
)
from thinkchain.chain.events import Usage
from thinkchain.models.backends import prefix_store, schema_mask
from thinkchain.models.backends.kv_slots import common_prefix
from thinkchain.models.backends.llama_engine import DecodeEngine, EngineRequest, Prefix

DEFAULT_CONTEXT = 8192
_GGUF_MAGIC = b"GGUF"
# Pinned prefixes: the page's four (English and Chinese, code steps on and off) and room for
# two more modes before the least recently used one is replaced (it comes back from disk).
DEFAULT_PINNED = 6
# A system prompt shorter than this is evaluated in a blink: not worth a pin or a file.
MIN_PREFIX_TOKENS = 64
# Requests that pass a client's own messages through: their system prompts stay off the disk.
_UNSAVED_PURPOSES = frozenset({"plain"})


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


class LlamaCppBackend:
    """A GGUF model in this process.  Loading takes a few seconds; reuse the instance.

    ``n_parallel`` sequences decode together; ``n_ctx`` is the context of each of them
    (their KV cells come from one shared pool of ``n_ctx`` × ``n_parallel`` cells, less
    where they share a prefix).
    """

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        *,
        n_ctx: int = DEFAULT_CONTEXT,
        n_parallel: int = 1,
        n_threads: int | None = None,
        n_batch: int = 512,
        seed: int = 0,
        n_pinned: int = DEFAULT_PINNED,
        prefix_store_dir: str | os.PathLike[str] | None = None,
        use_mmap: bool = False,
        use_schema_mask: bool = True,
        model_name: str | None = None,
        verbose: bool = False,
    ) -> None:
        path = Path(model_path).expanduser()
        check_gguf(path)
        try:
            import llama_cpp
            from llama_cpp import Llama
        except ImportError as err:  # pragma: no cover - depends on the install
            raise ModelLoadError(
                "the embedded model needs llama-cpp-python: pip install 'thinkchain[embedded]'"
            ) from err
        threads = n_threads or os.cpu_count() or 1
        try:
            # This Llama object provides the weights, vocabulary and metadata; its own tiny
            # context is never used for generation (the engine has its own).  No mmap: the CPU
            # backend repacks most weights into its own interleaved copy, and with the file
            # mapped as well the process holds both (2.0 GB resident for a 1.1 GB model, over
            # the 1.6 GB the memory benchmark allows); read into memory, only the copy in use
            # stays (1.4 GB).  Mapping loads no faster from a cold page cache and 0.5 s faster
            # from a warm one (docs/benchmarks.md, "First step").
            self._llama = Llama(
                model_path=str(path),
                n_ctx=64,
                n_batch=8,
                n_threads=1,
                use_mmap=use_mmap,
                verbose=verbose,
            )
        except (ValueError, RuntimeError, OSError) as err:
            raise ModelLoadError(f"llama.cpp could not load {path}: {err}") from err
        self.path = path
        self._model_name = model_name or path.stem
        self.max_parallel = max(1, n_parallel)
        self._n_ctx = n_ctx
        vocab = self._llama._model.vocab
        self._eog = {
            t for t in range(self._llama.n_vocab()) if llama_cpp.llama_vocab_is_eog(vocab, t)
        }
        self._formatter = self._make_formatter()
        self._use_mask = use_schema_mask and schema_mask.available()
        self._masker: schema_mask.TokenMasker | None = None
        self._masker_lock = threading.Lock()
        self._seeds = itertools.count(seed)
        self._prefixes: dict[str, Prefix | None] = {}
        self._prefix_lock = threading.Lock()
        store = None
        if prefix_store.enabled() and n_pinned > 0:
            folder = Path(prefix_store_dir) if prefix_store_dir else _default_store_dir()
            store = prefix_store.PrefixStore(folder, prefix_store.cap_bytes())
        self._engine = DecodeEngine(
            self._llama,
            n_parallel=self.max_parallel,
            n_ctx=n_ctx * self.max_parallel,
            n_batch=n_batch,
            n_threads=threads,
            eog=self._eog,
            name=self.name,
            n_pinned=max(0, n_pinned),
            store=store,
            identity={
                "model": prefix_store.model_fingerprint(path),
                "build": prefix_store.llama_build(),
            },
        )
        _OPEN.add(self)
        # Usage of the last finished generation, for benchmarks.
        self.last_usage: Usage | None = None

    # -- protocol -----------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return f"llama.cpp:{self._model_name}"

    @property
    def capabilities(self) -> Capabilities:
        # Without llguidance, a schema is held by llama.cpp's own grammar and a regex not at all.
        return Capabilities(
            parallel_sequences=self.max_parallel,
            structured_output=("token_mask",) if self._use_mask else ("grammar",),
            regex_constraints=self._use_mask,
            in_process=True,
        )

    @property
    def model(self) -> str:
        return self._model_name

    def context_window(self) -> int:
        return self._n_ctx

    def count_tokens(self, messages: Sequence[Message]) -> int:
        return len(self._tokenize(self.render(messages)))

    async def generate(self, request: GenerationRequest) -> AsyncIterator[Chunk]:
        loop = asyncio.get_running_loop()
        items: asyncio.Queue[Any] = asyncio.Queue()

        def emit(item: Any) -> None:
            with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is listening
                loop.call_soon_threadsafe(items.put_nowait, item)

        stop = threading.Event()
        self._engine.submit(self._engine_request(request, emit, stop))
        try:
            while True:
                item = await items.get()
                if item is None:
                    return
                yield self._checked(item)
        finally:
            stop.set()
            self._engine.wake()

    def generate_sync(
        self, request: GenerationRequest, stop: threading.Event | None = None
    ) -> Iterator[Chunk]:
        """Blocking generation: text chunks, then one Completion."""
        items: queue.SimpleQueue[Any] = queue.SimpleQueue()
        stop = stop or threading.Event()
        self._engine.submit(self._engine_request(request, items.put, stop))
        try:
            while True:
                item = items.get()
                if item is None:
                    return
                yield self._checked(item)
        finally:
            stop.set()
            self._engine.wake()

    # -- internals ----------------------------------------------------------------------------

    def prepare_prefixes(self, systems: Sequence[str]) -> None:
        """Have the prompt prefixes of these system prompts resident before the first
        question: loaded from disk, or evaluated in the background (users go first) and saved.
        Returns at once."""
        for system in systems:
            prefix = self.system_prefix(system)
            if prefix is not None:
                self._engine.prepare(prefix)

    def system_prefix(self, system: str) -> Prefix | None:
        """The tokens every prompt starting with this system message starts with: the chat
        template's rendering of it, up to where the first user turn's text begins."""
        with self._prefix_lock:
            if system in self._prefixes:
                return self._prefixes[system]
        a, b = (
            self._tokenize(
                self.render([{"role": "system", "content": system}, {"role": "user", "content": q}])
            )
            for q in ("A", "B")
        )
        n = common_prefix(a, b)
        prefix = Prefix(tuple(a[:n])) if n >= MIN_PREFIX_TOKENS else None
        with self._prefix_lock:
            if len(self._prefixes) >= 64:  # a server passing many clients' prompts through
                self._prefixes.clear()
            self._prefixes[system] = prefix
        return prefix

    def _prefix_of(self, request: GenerationRequest, tokens: list[int]) -> Prefix | None:
        messages = request.messages
        if request.purpose in _UNSAVED_PURPOSES or not messages:
            return None
        first = messages[0]
        if first.get("role") != "system" or not first.get("content"):
            return None
        prefix = self.system_prefix(first["content"])
        if prefix is None or len(tokens) <= len(prefix.tokens):
            return None
        return prefix if common_prefix(list(prefix.tokens), tokens) == len(prefix.tokens) else None

    def _checked(self, item: Any) -> Chunk:
        if isinstance(item, BackendError):
            raise item
        if isinstance(item, BaseException):
            raise BackendError(
                f"llama.cpp failed: {type(item).__name__}: {item}", server=self.name
            ) from item
        if isinstance(item, Completion):
            self.last_usage = item.usage
        return item

    def _engine_request(
        self, request: GenerationRequest, emit: Any, stop: threading.Event
    ) -> EngineRequest:
        tokens = self._tokenize(self.render(request.messages))
        masked, grammar = self._constraint(request)
        seed = request.seed if request.seed is not None else next(self._seeds)
        return EngineRequest(
            tokens=tokens,
            max_tokens=max(1, request.max_tokens),
            temperature=request.temperature,
            seed=seed,
            emit=emit,
            stop=stop,
            halt=request.halt,
            masked=masked,
            grammar=grammar,
            server=self.name,
            prefix=self._prefix_of(request, tokens),
        )

    def render(self, messages: Sequence[Message]) -> str:
        result = self._formatter(messages=[dict(m) for m in messages])
        return str(result.prompt)

    def _tokenize(self, text: str) -> list[int]:
        return self._llama.tokenize(text.encode("utf-8"), add_bos=self._add_bos, special=True)

    def _constraint(self, request: GenerationRequest) -> tuple[Any, Any]:
        """(llguidance mask, llama.cpp grammar): at most one of them, or neither."""
        regex = request.regex
        if request.schema is None and regex is None:
            return None, None
        if self._use_mask:
            masker = self._get_masker()
            if regex is not None:
                grammar = masker.grammar_for_regex(regex)
            else:
                grammar = masker.grammar_for_schema(request.schema)  # type: ignore[arg-type]
            try:
                return masker.matcher(grammar), None
            except ValueError as err:
                raise RequestRejected(str(err), server=self.name) from err
        if request.schema is None:
            return None, None  # no llguidance: free text, parsed leniently afterwards
        from llama_cpp import LlamaGrammar

        return None, LlamaGrammar.from_json_schema(json.dumps(request.schema), verbose=False)

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
        model = self._llama._model
        bos = model.token_get_text(model.token_bos()) if model.token_bos() >= 0 else ""
        eos = model.token_get_text(model.token_eos()) if model.token_eos() >= 0 else ""
        # If the template writes the BOS text itself, the tokenizer must not add another.
        self._add_bos = "bos_token" not in template
        return Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)

    @property
    def prefix_store(self) -> prefix_store.PrefixStore | None:
        return self._engine.pins.store

    @property
    def engine(self) -> DecodeEngine:
        return self._engine

    def close(self) -> None:
        _OPEN.discard(self)
        self._engine.close()
        self._llama.close()


# Backends still open when the interpreter exits: a decode thread still at work then (a prefix
# prepared in the background) would run on while the model is freed under it, a segfault at
# exit.  Weak, so a backend nobody holds is not kept for this; one hook for them all.
_OPEN: weakref.WeakSet[LlamaCppBackend] = weakref.WeakSet()


@atexit.register
def _close_open_backends() -> None:
    for backend in list(_OPEN):
        backend.close()


def _default_store_dir() -> Path:
    from thinkchain.models.embedded import cache_dir

    return cache_dir() / "prefix-states"
