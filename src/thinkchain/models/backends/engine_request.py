"""One generation as the decode engine sees it: what was asked, and its state while it runs."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Prefix:
    """The fixed start of prompts (a system prompt and its layout, up to the user's turn):
    its KV state is kept in a pinned sequence and saved to disk, never evaluated twice."""

    tokens: tuple[int, ...]


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
    prefix: Prefix | None = None  # the prompt starts with this fixed prefix
    # Evaluates ``prefix`` into a pinned sequence and generates nothing.  In the background it
    # waits for every user request; a user request that needs it makes it foreground.
    prefill: bool = False
    background: bool = False
    # This request made a pin evaluate its prefix and waited for it: those tokens are not
    # counted as cached in its usage (they were evaluated for it, just in another sequence).
    paid_prefix: bool = False
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
