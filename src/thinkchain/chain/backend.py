"""The one narrow protocol every backend speaks, and the errors it may raise.

A backend turns a :class:`GenerationRequest` into an async stream of :class:`TextChunk`
followed by exactly one :class:`Completion`.  It knows nothing of steps, prompts or retries:
it raises :class:`BackendError` and the chain decides what to do.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from thinkchain.chain.events import Usage

Message = dict[str, str]  # {"role": "system" | "user" | "assistant", "content": "..."}


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a backend can do, declared by the backend itself."""

    # Sequences it decodes together; None when a server schedules any number of them.  One
    # means requests are served one after another, so chains of a run take turns.
    parallel_sequences: int | None = None
    # How it can hold a reply to a JSON schema ("token_mask", "grammar", or the server
    # dialects of backends/dialects.py it may try); empty: it cannot, replies are parsed.
    structured_output: tuple[str, ...] = ()
    # Whether it holds a reply to GenerationRequest.regex; if not, the reply is parsed.
    regex_constraints: bool = False
    # Whether the model runs in this process (code steps are on by default there).
    in_process: bool = False


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    messages: Sequence[Message]
    max_tokens: int
    temperature: float = 0.2
    # JSON schema the reply must follow; None asks for free text.
    schema: dict[str, Any] | None = None
    schema_name: str = "reasoning_step"
    seed: int | None = None
    # What the call is for ("step", "answer", "direct", ...): shown in logs and scripted tests.
    purpose: str = "step"
    # A regular expression the whole reply must match (the free-text step's envelope); held
    # by backends whose capabilities have regex_constraints, else the reply is parsed.
    regex: str | None = None
    # Set by the caller to end the generation early and keep it: the reply is complete (a
    # free-text step wrote its closing line).  The backend stops between two chunks and still
    # sends its Completion, with finish_reason "stop".
    halt: threading.Event = field(default_factory=threading.Event, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class TextChunk:
    text: str


@dataclass(frozen=True, slots=True)
class Completion:
    """The last item of every generation stream."""

    usage: Usage
    finish_reason: str | None = None  # "stop", "length", ...
    server: str | None = None
    # Whether the backend enforced the schema (so parse errors are the model's fault, not ours).
    schema_enforced: bool = False


Chunk = TextChunk | Completion


class BackendError(Exception):
    """A backend failed.  ``retryable`` says whether trying again may help."""

    retryable = False

    def __init__(
        self,
        message: str,
        *,
        server: str | None = None,
        status: int | None = None,
        retry_after: float | None = None,
        timed_out: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.server = server
        self.status = status  # the HTTP status, when a server answered with one
        self.retry_after = retry_after
        self.timed_out = timed_out  # no answer within the connect or read timeout

    def __str__(self) -> str:
        where = f"{self.server}: " if self.server else ""
        return f"{where}{self.message}"


class TransportError(BackendError):
    """The request did not complete: refused, timed out, cut, rate-limited, 5xx.  Retry."""

    retryable = True


class RequestRejected(BackendError):
    """The server refused this request for good (4xx other than 408/429).  Do not retry."""


class ContextOverflow(RequestRejected):
    """The prompt does not fit the model's context window."""


@runtime_checkable
class Backend(Protocol):
    """What the chain needs from a model."""

    @property
    def name(self) -> str:
        """Short description for people: kind and where, e.g. ``llama.cpp:qwen2.5-coder-1.5b``."""
        ...

    @property
    def model(self) -> str: ...

    @property
    def capabilities(self) -> Capabilities: ...

    def generate(self, request: GenerationRequest) -> AsyncIterator[Chunk]:
        """Stream text chunks, then one Completion.  Raises BackendError."""
        ...

    def context_window(self) -> int | None:
        """Tokens the model can attend to, when known."""
        ...

    def count_tokens(self, messages: Sequence[Message]) -> int | None:
        """Prompt tokens of ``messages`` as the model will see them, when it can be known."""
        ...
