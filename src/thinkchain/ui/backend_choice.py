"""Which model the page talks to: the sidebar's choice, as the one BackendConfig every face uses.

``thinkchain ui`` passes its options to the page through the usual environment variables
(``THINKCHAIN_BASE_URL``, ``THINKCHAIN_MODEL``, ...); they are the sidebar's starting values.
Backends are kept for the life of the process (backends/factory.py), so the embedded model is
loaded once, not on every rerun of the page, and a server's connection pool and JSON-schema
dialect are reused.
"""

from __future__ import annotations

import os

from thinkchain.chain.backend import Backend
from thinkchain.chain.settings import auto_tools
from thinkchain.models import embedded as models
from thinkchain.models.backends.factory import (
    ENV_API_KEY,
    ENV_BASE_URL,
    ENV_MODEL,
    BackendConfig,
    is_made,
    shared_backend,
    url_list,
)
from thinkchain.models.prefixes import prepare_in_background

ENV_DEMO = "THINKCHAIN_UI_DEMO"  # "1": start on the scripted demo (``thinkchain ui --demo``)

EMBEDDED, SERVER, DEMO = "embedded", "server", "demo"

# The chain and the "compare with a direct answer" call decode side by side on the embedded
# model, each in its own sequence, so neither evicts the other's KV cache.
PAGE_PARALLEL = 2


class ModelMissing(Exception):
    def __init__(self, name: str, alias: str) -> None:
        super().__init__(f"the embedded model {name} is not downloaded")
        self.name = name
        self.alias = alias


def launch_config() -> BackendConfig:
    """What ``thinkchain ui`` was started with."""
    if os.environ.get(ENV_DEMO) == "1":
        return BackendConfig(demo=True)
    base_url = os.environ.get(ENV_BASE_URL, "")
    model = os.environ.get(ENV_MODEL, "").strip() or None
    if base_url.strip():
        key = os.environ.get(ENV_API_KEY) or None
        return BackendConfig(base_urls=url_list(base_url), model=model, api_key=key)
    if model and not os.environ.get(models.ENV_MODEL_PATH):
        return embedded_config(models.find(model).aliases[0])
    return embedded_config(embedded_options()[0])


def embedded_config(option: str) -> BackendConfig:
    """An embedded model by alias (its file named too, so that a --model-path given at launch
    does not win over the choice), or a GGUF file by path."""
    if option in {m.aliases[0] for m in models.EMBEDDED}:
        path = str(models.path_of(models.find(option)))
        return BackendConfig(model=option, model_path=path, parallel=PAGE_PARALLEL)
    return BackendConfig(model_path=option, parallel=PAGE_PARALLEL)


def embedded_option(config: BackendConfig) -> str:
    """The sidebar's option for an embedded config: its alias, or its file."""
    return config.model or config.model_path or embedded_options()[0]


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


def check_present(config: BackendConfig) -> None:
    """ModelMissing when an embedded model by alias is not downloaded (the page says how to
    get it, rather than downloading a gigabyte on a click)."""
    if config.kind != EMBEDDED or config.model is None:
        return
    model = models.find(config.model)
    if not models.is_present(model):
        raise ModelMissing(model.name, config.model)


def backend_for(config: BackendConfig) -> Backend:
    """The backend for a config, made once per process; an embedded model prepares its prompt
    prefixes in the background when it is first made."""
    check_present(config)
    made = is_made(config)
    backend = shared_backend(config)
    if not made:
        prepare_in_background(backend, page_tools)
    return backend


def page_tools() -> list[tuple[str, ...]]:
    """The tools settings whose prefixes the page prepares: as the sidebar starts, then not."""
    start = auto_tools(embedded=True)
    return [start, () if start else ("python",)]


def is_loaded(config: BackendConfig) -> bool:
    return is_made(config)
