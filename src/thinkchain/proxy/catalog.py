"""Which models the proxy serves, and where each request goes.

Every upstream model is served twice: as itself (its requests pass straight through) and as
a reasoning variant (``<model>-thinkchain`` by default) that runs a chain on it.  Upstream
model lists are fetched from every upstream and kept for ``models_ttl`` seconds; a name not
in the list triggers one refresh (at most every few seconds) before it is called unknown.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from thinkchain.chain.backend import Backend
from thinkchain.models.backends.openai_compat import OpenAICompatBackend
from thinkchain.proxy.errors import ProxyError
from thinkchain.proxy.proxy_settings import ProxySettings

log = logging.getLogger("thinkchain.proxy")

# A miss refreshes the list at most this often, so unknown names cannot hammer the upstreams.
_MISS_REFRESH_INTERVAL = 2.0


@dataclass(frozen=True)
class ModelInfo:
    """One model as the upstreams (or the in-process backend) offer it."""

    id: str
    upstreams: tuple[str, ...]  # the servers that list it; empty for the in-process model
    card: dict[str, Any]  # the upstream's own model card, served unchanged for the plain model

    @property
    def local(self) -> bool:
        return not self.upstreams

    @property
    def context_window(self) -> int | None:
        value = self.card.get("max_model_len")  # vLLM reports it
        return value if isinstance(value, int) and value > 0 else None


@dataclass(frozen=True)
class Target:
    """Where one request goes: the plain model, or its reasoning variant."""

    kind: Literal["plain", "reasoning"]
    name: str  # the name the client asked for
    model: ModelInfo


@dataclass
class Catalog:
    settings: ProxySettings
    http: httpx.AsyncClient
    local_backend: Backend | None = None
    _models: dict[str, ModelInfo] = field(default_factory=dict)
    _fetched_at: float = float("-inf")
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _backends: dict[str, OpenAICompatBackend] = field(default_factory=dict)

    def __post_init__(self) -> None:
        prefix, suffix = self.settings.variant_pattern.split("{model}")
        self._variant = re.compile(f"^{re.escape(prefix)}(?P<model>.+){re.escape(suffix)}$", re.S)

    # -- names --------------------------------------------------------------------------------

    def variant_name(self, model: str) -> str:
        return self.settings.variant_pattern.replace("{model}", model)

    def base_of(self, name: str) -> str | None:
        match = self._variant.match(name)
        return match.group("model") if match else None

    # -- the list -----------------------------------------------------------------------------

    async def models(self, *, refresh: bool = False) -> dict[str, ModelInfo]:
        if self.local_backend is not None and not self.settings.upstreams:
            name = self.local_backend.model
            return {name: ModelInfo(name, (), {"id": name, "object": "model", "created": 0})}
        stale = time.monotonic() - self._fetched_at > self.settings.models_ttl
        if refresh or stale or not self._models:
            async with self._lock:
                # Another request may have refreshed while this one waited for the lock.
                if refresh or time.monotonic() - self._fetched_at > self.settings.models_ttl:
                    await self._fetch()
        return self._models

    async def _fetch(self) -> None:
        urls = self.settings.upstreams
        results = await asyncio.gather(*(self._fetch_one(u) for u in urls), return_exceptions=True)
        found: dict[str, ModelInfo] = {}
        failures: list[ProxyError] = []
        for url, result in zip(urls, results, strict=True):
            if isinstance(result, ProxyError):
                failures.append(result)
                log.warning("cannot list the models of %s: %s", url, result.message)
                continue
            if isinstance(result, BaseException):
                raise result
            for card in result:
                known = found.get(card["id"])
                upstreams = (*known.upstreams, url) if known else (url,)
                found[card["id"]] = ModelInfo(card["id"], upstreams, known.card if known else card)
        if failures and len(failures) == len(urls):
            if self._models:
                # Keep serving the last list while every upstream is down; ask again later.
                self._fetched_at = time.monotonic()
                return
            raise failures[0]  # nothing known yet: the next request asks again
        self._models = found
        self._fetched_at = time.monotonic()

    async def _fetch_one(self, url: str) -> list[dict[str, Any]]:
        headers = {}
        if self.settings.upstream_api_key is not None:
            headers["Authorization"] = f"Bearer {self.settings.upstream_api_key.get_secret_value()}"
        try:
            response = await self.http.get(f"{url}/models", headers=headers)
        except httpx.TimeoutException:
            raise ProxyError(504, f"the upstream {url} did not list its models in time") from None
        except httpx.HTTPError as err:
            raise ProxyError(
                502, f"cannot reach the upstream {url}: {type(err).__name__}"
            ) from None
        if response.status_code != 200:
            raise ProxyError(
                502, f"the upstream {url} answered HTTP {response.status_code} to GET /models"
            )
        try:
            data = response.json().get("data")
        except (ValueError, AttributeError):
            data = None
        if not isinstance(data, list):
            raise ProxyError(502, f"the upstream {url} sent no model list")
        return [c for c in data if isinstance(c, dict) and isinstance(c.get("id"), str)]

    async def cards(self) -> list[dict[str, Any]]:
        """The model list as served: each model as itself, then its reasoning variant."""
        out: list[dict[str, Any]] = []
        for info in (await self.models()).values():
            out.append(info.card)
            out.append(
                {
                    "id": self.variant_name(info.id),
                    "object": "model",
                    "created": info.card.get("created", 0),
                    "owned_by": "thinkchain",
                    "root": info.id,
                    "parent": info.id,
                    "thinkchain": {"tools": list(self.settings.tools)},
                }
            )
        return out

    # -- routing ------------------------------------------------------------------------------

    async def resolve(self, name: str) -> Target:
        """What ``name`` is; 404 when neither a model nor a variant of one."""
        for attempt in range(2):
            models = await self.models(refresh=attempt == 1)
            # A real upstream model wins over a variant that happens to have the same name.
            if name in models:
                return Target("plain", name, models[name])
            base = self.base_of(name)
            if base is not None and base in models:
                return Target("reasoning", name, models[base])
            if attempt == 0 and (
                time.monotonic() - self._fetched_at < _MISS_REFRESH_INTERVAL
                or not self.settings.upstreams
            ):
                break
        raise ProxyError(
            404,
            f"the model {name!r} does not exist; GET /v1/models lists the models served",
            param="model",
            code="model_not_found",
        )

    def backend_for(self, model: ModelInfo) -> Backend:
        """The chain backend of a model: one per model, shared by every request."""
        if model.local:
            assert self.local_backend is not None
            return self.local_backend
        backend = self._backends.get(model.id)
        if backend is None or backend.base_urls != list(model.upstreams):
            key = self.settings.upstream_api_key
            backend = OpenAICompatBackend(
                list(model.upstreams),
                model.id,
                key.get_secret_value() if key is not None else None,
                connect_timeout=self.settings.connect_timeout,
                read_timeout=self.settings.read_timeout,
                context_window=model.context_window,
            )
            self._backends[model.id] = backend
        return backend
