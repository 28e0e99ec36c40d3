"""The fixed prompt prefixes of a chain's configurations, prepared before the first question.

Every chain's first prompt starts with the system prompt of its language, mode and tools.
An in-process model can evaluate (or load) those prefixes ahead of time, so that the first
question of a page or a proxy does not wait for them.  Which system prompt a configuration
uses is the shapes' business: this module asks them, by starting a chain on a backend that
records the first prompt it is sent and refuses it, so a changed prompt or shape is picked up
without anything here to update.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import Any

from thinkchain.chain.backend import (
    Capabilities,
    Chunk,
    GenerationRequest,
    Message,
    RequestRejected,
)
from thinkchain.chain.loop import Chain
from thinkchain.chain.prompts import LANGS
from thinkchain.chain.settings import DEFAULT_MODE, ENV_MODE, MODES, ChainSettings

log = logging.getLogger("thinkchain.models.prefixes")

_PROBE_QUESTION = "?"


class _FirstPrompt:
    """A backend that records the messages of the first request and refuses it."""

    name = "prefix-probe"
    model = "prefix-probe"
    capabilities = Capabilities(in_process=True)

    def __init__(self) -> None:
        self.messages: Sequence[Message] | None = None

    def context_window(self) -> int | None:
        return None

    def count_tokens(self, messages: Sequence[Message]) -> int | None:
        return None

    async def generate(self, request: GenerationRequest) -> AsyncIterator[Chunk]:
        if self.messages is None:
            self.messages = request.messages
        raise RequestRejected("recorded", server=self.name)
        yield  # pragma: no cover - makes this an async generator


def system_prompt(settings: ChainSettings) -> str | None:
    """The system message a chain with ``settings`` (its lang not "auto") starts with."""
    probe = _FirstPrompt()
    asyncio.run(Chain(probe, settings).arun(_PROBE_QUESTION))
    messages = probe.messages or []
    if messages and messages[0].get("role") == "system":
        return messages[0]["content"]
    return None


def start_mode() -> str:
    """The mode a page or ``ask`` starts in ($THINKCHAIN_MODE, else the default)."""
    mode = os.environ.get(ENV_MODE, "").strip()
    return mode if mode in MODES else DEFAULT_MODE


def configurations(
    tools_options: Iterable[tuple[str, ...]], modes: Iterable[str] | None = None
) -> list[ChainSettings]:
    """Every language × tools option × mode, in the order given (most likely first)."""
    out = []
    for mode in modes or (start_mode(),):
        for tools in tools_options:
            for lang in LANGS:
                out.append(
                    ChainSettings.model_validate({"mode": mode, "lang": lang, "tools": tools})
                )
    return out


def system_prompts(configs: Iterable[ChainSettings]) -> list[str]:
    """The distinct system prompts of ``configs``, in order."""
    seen: dict[str, None] = {}
    for settings in configs:
        system = system_prompt(settings)
        if system is not None:
            seen.setdefault(system, None)
    return list(seen)


def prepare_in_background(
    backend: Any,
    tools_options: Callable[[], Iterable[tuple[str, ...]]],
    modes: Iterable[str] | None = None,
) -> threading.Thread | None:
    """Have ``backend`` prepare the prefixes of these configurations, from a daemon thread
    (``tools_options`` may probe the sandbox: that happens there too).  Backends that keep
    no prefixes (servers, the demo) are left alone."""
    prepare = getattr(backend, "prepare_prefixes", None)
    if prepare is None:
        return None
    chosen = list(modes) if modes is not None else None

    def work() -> None:
        try:
            prepare(system_prompts(configurations(tools_options(), chosen)))
        except Exception:  # a start-up nicety: never take the page or the proxy down
            log.exception("could not prepare the prompt prefixes")

    thread = threading.Thread(target=work, name="thinkchain-prefixes", daemon=True)
    thread.start()
    return thread
