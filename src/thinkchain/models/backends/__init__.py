"""Backends: where the tokens come from.  See base.py for the protocol."""

from __future__ import annotations

from thinkchain.chain.backend import (
    Backend,
    BackendError,
    Completion,
    ContextOverflow,
    GenerationRequest,
    RequestRejected,
    TextChunk,
    TransportError,
)
from thinkchain.models.backends.factory import BackendConfig, make_backend

__all__ = [
    "Backend",
    "BackendConfig",
    "BackendError",
    "Completion",
    "ContextOverflow",
    "GenerationRequest",
    "RequestRejected",
    "TextChunk",
    "TransportError",
    "make_backend",
]
