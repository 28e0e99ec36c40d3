"""One generation as the decode engine sees it: what was asked, and its state while it runs."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class EngineRequest:
    tokens: list[int]
    max_tokens: int
    temperature: float
    seed: int
    emit: Callable[[Any], None]  # receives TextChunk, Completion, or an Exception
    stop: threading.Event  # the caller went away: drop the request
    halt: threading.Event | None = None  # the caller has what it needs: finish it as done
    masked: Any = None  # schema_mask.MaskedSampling, or None
    grammar: Any = None  # llama_cpp.LlamaGrammar fallback, or None
    server: str = "llama.cpp"
    # runtime state, owned by the engine thread
    slot: int = -1
    pending: list[int] = field(default_factory=list)
    pos: int = 0
    next_token: int | None = None
    logit_index: int = -1
    cached: int = 0
    produced: int = 0
    sampler: Any = None
    decoder: Any = None
    out_tokens: list[int] = field(default_factory=list)
