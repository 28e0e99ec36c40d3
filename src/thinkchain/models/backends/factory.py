"""Build the backend a user asked for: a server, the embedded model, or the demo script."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from thinkchain.chain.backend import Backend

ENV_BASE_URL = "THINKCHAIN_BASE_URL"
ENV_MODEL = "THINKCHAIN_MODEL"
ENV_API_KEY = "THINKCHAIN_API_KEY"


@dataclass(frozen=True)
class BackendConfig:
    """Where to get tokens.  ``base_urls`` empty means the embedded model."""

    base_urls: tuple[str, ...] = ()
    model: str | None = None
    api_key: str | None = field(default=None, repr=False)  # never printed
    model_path: str | None = None
    connect_timeout: float = 10.0
    read_timeout: float = 120.0
    n_ctx: int | None = None
    # Sequences the embedded model decodes together (concurrent chains, sc samples, eval
    # items); 1 keeps memory lowest.  Servers batch on their own side.
    parallel: int = 1
    demo: bool = False  # the scripted strawberry demo: no model at all

    @classmethod
    def from_env(cls, **overrides: object) -> BackendConfig:
        urls = overrides.pop("base_urls", None) or os.environ.get(ENV_BASE_URL, "")
        if isinstance(urls, str):
            urls = url_list(urls)
        values: dict[str, object] = {
            "base_urls": tuple(urls),  # type: ignore[arg-type]
            "model": overrides.pop("model", None) or os.environ.get(ENV_MODEL) or None,
            "api_key": overrides.pop("api_key", None) or os.environ.get(ENV_API_KEY) or None,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]

    @property
    def kind(self) -> str:
        if self.demo:
            return "demo"
        return "server" if self.base_urls else "embedded"

    def describe(self) -> str:
        if self.demo:
            return "demo script (no model)"
        if self.base_urls:
            return f"{', '.join(self.base_urls)} · model {self.model or '(server default)'}"
        return f"embedded model {self.model or self.model_path or 'default'}"


def url_list(text: str) -> tuple[str, ...]:
    """``"a, b"`` -> the server URLs as written, in order (the backend normalises them)."""
    return tuple(u.strip() for u in text.split(",") if u.strip())


# More sequences than this stop paying on a CPU (docs/benchmarks.md, "Slots").
MAX_PARALLEL = 8

_embedded_lock = threading.Lock()
_embedded: dict[tuple[str, int | None, int], Backend] = {}


def embedded_backend(model_path: Path, n_ctx: int | None = None, parallel: int = 1) -> Backend:
    """The in-process model for ``model_path``, loaded once per process and shared."""
    from thinkchain.models.backends.llamacpp import DEFAULT_CONTEXT, LlamaCppBackend

    parallel = max(1, min(parallel, MAX_PARALLEL))
    key = (str(model_path.resolve()), n_ctx, parallel)
    with _embedded_lock:
        backend = _embedded.get(key)
        if backend is None:
            backend = LlamaCppBackend(
                model_path, n_ctx=n_ctx or DEFAULT_CONTEXT, n_parallel=parallel
            )
            _embedded[key] = backend
        return backend


def make_backend(
    config: BackendConfig, progress: Callable[[int, int], None] | None = None
) -> Backend:
    """A backend for ``config``; the embedded model is fetched on first use (with progress)."""
    if config.demo:
        from thinkchain.models.backends.scripted import demo_backend

        return demo_backend()
    if config.base_urls:
        from thinkchain.models.backends.openai_compat import OpenAICompatBackend

        return OpenAICompatBackend(
            list(config.base_urls),
            config.model,
            config.api_key,
            connect_timeout=config.connect_timeout,
            read_timeout=config.read_timeout,
        )
    from thinkchain.models.embedded import find, resolve_model_path

    name = None
    if config.model and not config.model_path:
        name = find(config.model).name  # raises a clear error for unknown names
    path = resolve_model_path(config.model_path, model=name, progress=progress)
    return embedded_backend(path, config.n_ctx, config.parallel)


_shared_lock = threading.Lock()
_shared: dict[BackendConfig, Backend] = {}


def shared_backend(config: BackendConfig) -> Backend:
    """The backend for ``config``, made once per process and shared (a long-lived face, the
    page, keeps one per choice: the embedded model loaded once, a server's pool reused)."""
    with _shared_lock:
        backend = _shared.get(config)
        if backend is None:
            backend = make_backend(config)
            _shared[config] = backend
        return backend


def is_made(config: BackendConfig) -> bool:
    """Whether ``shared_backend(config)`` would return at once."""
    with _shared_lock:
        return config in _shared
