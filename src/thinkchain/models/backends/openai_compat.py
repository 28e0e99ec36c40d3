"""Any OpenAI-compatible chat-completions server: vLLM, llama.cpp, Ollama, OpenAI, ...

Servers spell "answer in this JSON schema" differently.  The backend knows the dialects
(dialects.py), tries them in order on the first schema request to a server, and remembers per
server and model the first one accepted.  Requests are spread over one or more servers (least
outstanding requests first, server_pool.py); a server that fails is skipped for a while, so a
chain only sees a retry.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import AsyncIterator, Sequence
from typing import Any

import openai

from thinkchain.chain.backend import (
    Capabilities,
    Chunk,
    Completion,
    GenerationRequest,
    Message,
    RequestRejected,
    TextChunk,
    TransportError,
)
from thinkchain.chain.events import Usage
from thinkchain.models.backends.dialects import (
    DIALECT_REJECTIONS,
    DIALECTS,
    ENFORCING_DIALECTS,
    forget_dialects,
    note_refuses_stream_usage,
    refuses_stream_usage,
    remember_dialect,
    remembered_dialect,
    schema_fields,
)
from thinkchain.models.backends.openai_errors import parse_retry_after, translate_error
from thinkchain.models.backends.server_pool import (
    PooledServer,
    ServerPool,
    normalise_url,
    split_urls,
)

__all__ = [
    "DIALECTS",
    "ENFORCING_DIALECTS",
    "OpenAICompatBackend",
    "ServerPool",
    "forget_dialects",
    "normalise_url",
    "parse_retry_after",
    "remembered_dialect",
    "split_urls",
]


class OpenAICompatBackend:
    """Chat completions over HTTP with the official ``openai`` SDK, streaming by default."""

    def __init__(
        self,
        base_url: str | Sequence[str],
        model: str | None = None,
        api_key: str | None = None,
        *,
        connect_timeout: float = 10.0,
        read_timeout: float = 120.0,
        stream: bool = True,
        dialect: str | None = None,
        context_window: int | None = None,
    ) -> None:
        self.pool = ServerPool(split_urls(base_url))
        if dialect is not None and dialect not in DIALECTS:
            raise ValueError(f"unknown dialect {dialect!r}; one of {', '.join(DIALECTS)}")
        self._model = model
        self._api_key = api_key or "not-needed"  # local servers ignore it; the SDK wants one
        self._timeout = openai.Timeout(
            connect=connect_timeout, read=read_timeout, write=read_timeout, pool=read_timeout
        )
        self._stream = stream
        self._forced_dialect = dialect
        self._context_window = context_window
        # AsyncOpenAI clients hold connection pools bound to one event loop: one per loop.
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, Any]] = (
            weakref.WeakKeyDictionary()
        )
        self._model_lock: asyncio.Lock | None = None

    def __repr__(self) -> str:  # never shows the API key
        return f"OpenAICompatBackend({self.base_urls}, model={self._model!r})"

    # -- protocol -----------------------------------------------------------------------------

    @property
    def base_urls(self) -> list[str]:
        return [s.url for s in self.pool.servers]

    @property
    def name(self) -> str:
        return "openai:" + ",".join(self.base_urls)

    @property
    def capabilities(self) -> Capabilities:
        # A server batches what it is sent; which schema dialect it speaks is found by trying
        # (dialects.py), in this order; a regex it is never asked to hold.
        dialects = (self._forced_dialect,) if self._forced_dialect else DIALECTS
        return Capabilities(structured_output=tuple(d for d in dialects if d in ENFORCING_DIALECTS))

    @property
    def model(self) -> str:
        return self._model or "(server default)"

    def context_window(self) -> int | None:
        return self._context_window

    def count_tokens(self, messages: Sequence[Message]) -> int | None:
        return None  # only the server knows its tokenizer; it rejects prompts that do not fit

    async def generate(self, request: GenerationRequest) -> AsyncIterator[Chunk]:
        server = self.pool.pick()
        server.outstanding += 1
        try:
            model = await self._resolve_model(server)
            async for chunk in self._generate_on(server, model, request):
                yield chunk
            self.pool.succeeded(server)
        except TransportError:
            self.pool.failed(server)
            raise
        finally:
            server.outstanding -= 1

    # -- internals ----------------------------------------------------------------------------

    def _client(self, url: str) -> openai.AsyncOpenAI:
        loop = asyncio.get_running_loop()
        per_loop = self._clients.setdefault(loop, {})
        client = per_loop.get(url)
        if client is None:
            client = openai.AsyncOpenAI(
                base_url=url, api_key=self._api_key, timeout=self._timeout, max_retries=0
            )
            per_loop[url] = client
        return client

    async def _resolve_model(self, server: PooledServer) -> str:
        if self._model:
            return self._model
        try:
            page = await self._client(server.url).models.list()
        except Exception as err:
            raise translate_error(err, server.url) from err
        models = [m for m in page.data]
        if not models:
            raise RequestRejected("the server lists no models; pass --model", server=server.url)
        first = models[0]
        self._model = first.id
        extra = getattr(first, "model_extra", None) or {}
        if self._context_window is None and isinstance(extra.get("max_model_len"), int):
            self._context_window = extra["max_model_len"]
        return first.id

    def _dialects_to_try(self, url: str, model: str, request: GenerationRequest) -> list[str]:
        if request.schema is None:
            return ["none"]
        if self._forced_dialect:
            return [self._forced_dialect]
        known = remembered_dialect(url, model)
        return [known] if known else list(DIALECTS)

    async def _generate_on(
        self, server: PooledServer, model: str, request: GenerationRequest
    ) -> AsyncIterator[Chunk]:
        dialects = self._dialects_to_try(server.url, model, request)
        for position, dialect in enumerate(dialects):
            last = position == len(dialects) - 1
            body = self.request_body(model, request, dialect, server.url)
            try:
                opened = await self._open(server.url, body)
            except openai.APIStatusError as err:
                if err.status_code == 400 and "stream_options" in str(err.message):
                    note_refuses_stream_usage(server.url)
                    body = self.request_body(model, request, dialect, server.url)
                    try:
                        opened = await self._open(server.url, body)
                    except Exception as err2:
                        raise translate_error(err2, server.url) from err2
                elif not last and err.status_code in DIALECT_REJECTIONS:
                    continue  # this server does not speak this dialect; try the next
                else:
                    raise translate_error(err, server.url) from err
            except Exception as err:
                raise translate_error(err, server.url) from err
            if request.schema is not None and not self._forced_dialect:
                remember_dialect(server.url, model, dialect)
            enforced = request.schema is not None and dialect in ENFORCING_DIALECTS
            async for chunk in self._read(opened, server.url, enforced, request.halt):
                yield chunk
            return

    def request_body(
        self, model: str, request: GenerationRequest, dialect: str, url: str
    ) -> dict[str, Any]:
        """The exact JSON body sent for ``request`` in ``dialect`` (tests assert on it)."""
        body: dict[str, Any] = {
            "model": model,
            "messages": [dict(m) for m in request.messages],
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
        }
        if request.seed is not None:
            body["seed"] = request.seed
        if self._stream:
            body["stream"] = True
            if not refuses_stream_usage(url):
                body["stream_options"] = {"include_usage": True}
        if request.schema is not None:
            body.update(schema_fields(dialect, request.schema, request.schema_name))
        return body

    async def _open(self, url: str, body: dict[str, Any]) -> Any:
        client = self._client(url)
        known = {
            "model",
            "messages",
            "max_tokens",
            "temperature",
            "seed",
            "stream",
            "stream_options",
            "response_format",
        }
        kwargs = {k: v for k, v in body.items() if k in known}
        extra = {k: v for k, v in body.items() if k not in known}
        return await client.chat.completions.create(**kwargs, extra_body=extra or None)

    async def _read(
        self, opened: Any, url: str, enforced: bool, halt: threading.Event
    ) -> AsyncIterator[Chunk]:
        if not self._stream:
            choice = opened.choices[0] if opened.choices else None
            text = (choice.message.content or "") if choice else ""
            if choice is None:
                raise TransportError("the server's reply has no choices", server=url)
            if text:
                yield TextChunk(text)
            yield Completion(
                usage=_usage(opened.usage, 1 if text else 0),
                finish_reason=choice.finish_reason,
                server=url,
                schema_enforced=enforced,
            )
            return
        finish: str | None = None
        usage: Any = None
        pieces = 0
        seen_chunk = False
        try:
            async for chunk in opened:
                if halt.is_set():
                    finish = finish or "stop"  # the caller has what it needs: hang up
                    break
                seen_chunk = True
                if getattr(chunk, "usage", None):
                    usage = chunk.usage
                for choice in chunk.choices or ():
                    text = choice.delta.content if choice.delta else None
                    if text:
                        pieces += 1
                        yield TextChunk(text)
                    if choice.finish_reason:
                        finish = choice.finish_reason
        except Exception as err:
            raise translate_error(err, url, during_stream=True) from err
        finally:
            await opened.close()
        if not seen_chunk:
            kind = opened.response.headers.get("content-type", "unknown content type")
            raise TransportError(
                f"the server sent no chat-completion chunks (content type: {kind})", server=url
            )
        if finish is None:
            raise TransportError("the stream ended before the reply was complete", server=url)
        yield Completion(
            usage=_usage(usage, pieces), finish_reason=finish, server=url, schema_enforced=enforced
        )


def _usage(raw: Any, pieces: int) -> Usage:
    if raw is None:
        return Usage(completion_tokens=pieces, estimated=True)
    details = getattr(raw, "prompt_tokens_details", None)
    cached = getattr(details, "cached_tokens", None) if details is not None else None
    return Usage(
        prompt_tokens=int(raw.prompt_tokens or 0),
        completion_tokens=int(raw.completion_tokens or 0),
        cached_tokens=int(cached or 0),
    )
