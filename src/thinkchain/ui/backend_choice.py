"""Which model the page talks to: the choice made in the sidebar, and the backend it makes.

``thinkchain ui`` passes its options to the page through the usual environment variables
(``THINKCHAIN_BASE_URL``, ``THINKCHAIN_MODEL``, ...); they are the sidebar's starting values.
Backends are kept for the life of the process, so the embedded model is loaded once, not on
every rerun of the page, and a server's connection pool and JSON-schema dialect are reused.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

from .. import models
from ..backends.base import Backend
from ..backends.factory import ENV_API_KEY, ENV_BASE_URL, ENV_MODEL, BackendConfig, make_backend
from ..prefixes import prepare_in_background
from ..settings import auto_tools

ENV_DEMO = "THINKCHAIN_UI_DEMO"  # "1": start on the scripted demo (``thinkchain ui --demo``)

EMBEDDED, SERVER, DEMO = "embedded", "server", "demo"


class ModelMissing(Exception):
    def __init__(self, name: str, alias: str) -> None:
        super().__init__(f"the embedded model {name} is not downloaded")
        self.name = name
        self.alias = alias


@dataclass(frozen=True)
class BackendChoice:
    kind: str  # EMBEDDED, SERVER or DEMO
    embedded: str = "default"  # an embedded model's alias, or a GGUF file
    base_url: str = ""
    model: str = ""
    api_key: str = ""

    def describe(self) -> str:
        if self.kind == DEMO:
            return "demo script (no model)"
        if self.kind == SERVER:
            return f"{self.base_url} · model {self.model or '(server default)'}"
        return f"embedded model {self.embedded}"


def launch_choice() -> BackendChoice:
    """What ``thinkchain ui`` was started with."""
    base_url = os.environ.get(ENV_BASE_URL, "").strip()
    model = os.environ.get(ENV_MODEL, "").strip()
    api_key = os.environ.get(ENV_API_KEY, "")
    if os.environ.get(ENV_DEMO) == "1":
        kind = DEMO
    elif base_url:
        kind = SERVER
    else:
        kind = EMBEDDED
    embedded = embedded_options()[0]
    if kind == EMBEDDED and model and not os.environ.get(models.ENV_MODEL_PATH):
        embedded = models.find(model).aliases[0]
    return BackendChoice(
        kind,
        embedded=embedded,
        base_url=base_url,
        model="" if kind == EMBEDDED else model,
        api_key=api_key,
    )


def kinds() -> list[str]:
    """The kinds the sidebar offers; the demo only where the page was started with it."""
    offered = [EMBEDDED, SERVER]
    if os.environ.get(ENV_DEMO) == "1":
        offered.append(DEMO)
    return offered


def embedded_options() -> list[str]:
    """A GGUF file given with --model-path first, then the embedded models by alias."""
    explicit = os.environ.get(models.ENV_MODEL_PATH)
    aliases = [model.aliases[0] for model in models.EMBEDDED]
    return [explicit, *aliases] if explicit else aliases


def config_for(choice: BackendChoice) -> BackendConfig:
    """The backend config of a choice; ModelMissing when an embedded model is not downloaded."""
    if choice.kind == DEMO:
        return BackendConfig(demo=True)
    if choice.kind == SERVER:
        urls = tuple(u.strip() for u in choice.base_url.split(",") if u.strip())
        return BackendConfig(
            base_urls=urls, model=choice.model or None, api_key=choice.api_key or None
        )
    if choice.embedded not in {m.aliases[0] for m in models.EMBEDDED}:
        return BackendConfig(model_path=choice.embedded, parallel=PAGE_PARALLEL)
    model = models.find(choice.embedded)
    if not models.is_present(model):
        raise ModelMissing(model.name, choice.embedded)
    # The path itself, so that a --model-path given at launch does not win over the choice.
    return BackendConfig(model_path=str(models.path_of(model)), parallel=PAGE_PARALLEL)


# The chain and the "compare with a direct answer" call decode side by side on the embedded
# model, each in its own sequence, so neither evicts the other's KV cache.
PAGE_PARALLEL = 2

_lock = threading.Lock()
_backends: dict[BackendConfig, Backend] = {}


def backend_for(choice: BackendChoice) -> Backend:
    """The backend for a choice, made once per process."""
    config = config_for(choice)
    with _lock:
        backend = _backends.get(config)
        if backend is None:
            backend = make_backend(config)
            _backends[config] = backend
            # An embedded model loads (or evaluates) its prompt prefixes in the background.
            prepare_in_background(backend, page_tools)
        return backend


def page_tools() -> list[tuple[str, ...]]:
    """The tools settings whose prefixes the page prepares: as the sidebar starts, then not."""
    start = auto_tools(embedded=True)
    return [start, () if start else ("python",)]


def is_loaded(choice: BackendChoice) -> bool:
    try:
        return config_for(choice) in _backends
    except (ModelMissing, models.ModelError):
        return False
