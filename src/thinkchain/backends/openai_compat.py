"""Any OpenAI-compatible chat-completions server: vLLM, llama.cpp, Ollama, OpenAI, ...

Servers spell "answer in this JSON schema" differently.  The backend knows the dialects,
tries them in order on the first schema request to a server, and remembers per server and
model the first one accepted.  Requests are spread over one or more servers (least
outstanding requests first); a server that fails is skipped for a while, so a chain only
sees a retry.
"""

from __future__ import annotations

import asyncio
import email.utils
import re
import socket
import threading
import time
import weakref
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx2
import openai

from ..events import Usage
from .base import (
    BackendError,
    Chunk,
    Completion,
    ContextOverflow,
    GenerationRequest,
    Message,
    RequestRejected,
    TextChunk,
    TransportError,
)

# Tried in this order until a server accepts one; see DESIGN.md for who speaks what.
# json_object with a schema comes before guided_json because servers that ignore unknown
# fields (llama-cpp-python's server, for one) would accept guided_json without enforcing it.
DIALECTS = ("json_schema", "json_object_schema", "guided_json", "json_object", "none")
ENFORCING_DIALECTS = {"json_schema", "guided_json", "json_object_schema"}
# Statuses that, while a server's dialect is still unknown, mean "not this way of asking".
_DIALECT_REJECTIONS = {400, 404, 415, 422, 500, 501}
_CONTEXT_WORDS = re.compile(
    r"context length|context window|maximum context|too many tokens|prompt is too long|"
    r"exceeds? the (model'?s )?(max|context)",
    re.I,
)

# (base_url, model) -> the dialect that server accepted; shared by every backend instance.
_dialect_memory: dict[tuple[str, str], str] = {}
_no_stream_usage: set[str] = set()


def remembered_dialect(base_url: str, model: str) -> str | None:
    return _dialect_memory.get((normalise_url(base_url), model))


def forget_dialects() -> None:
    _dialect_memory.clear()
    _no_stream_usage.clear()


def normalise_url(url: str) -> str:
    url = url.strip().rstrip("/")
    if not re.match(r"^https?://", url):
        raise ValueError(f"not an http(s) URL: {url!r}")
    return url


def split_urls(urls: str | Sequence[str]) -> list[str]:
    """``"a,b"`` or ``["a", "b,c"]`` -> ``["a", "b", "c"]``, normalised, without duplicates."""
    items = [urls] if isinstance(urls, str) else list(urls)
    out: list[str] = []
    for item in items:
        for part in item.split(","):
            if part.strip():
                url = normalise_url(part)
                if url not in out:
                    out.append(url)
    if not out:
        raise ValueError("no server URL given")
    return out


def parse_retry_after(headers: Any) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date)."""
    if headers is None:
        return None
    value = headers.get("retry-after-ms")
    if value:
        try:
            return max(0.0, float(value) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


@dataclass
class _Server:
    url: str
    outstanding: int = 0
    failures: int = 0
    down_until: float = 0.0


@dataclass
class ServerPool:
    """Least-outstanding-requests choice among servers; failing servers cool down.

    A failure puts a server aside for a cool-down that doubles with each consecutive failure
    (1 s, 2 s, ... 30 s).  When it ends, the server gets one trial request before it gets its
    share again, and a success clears its record.  Requests that were already in flight when a
    server went down fail together; they count as one failure, not one each.  When every
    server is cooling down, the one that comes back first is tried (the chain's own retries
    and backoff decide when to give up).
    """

    urls: list[str]
    base_cooldown: float = 1.0
    max_cooldown: float = 30.0
    clock: Callable[[], float] = time.monotonic
    servers: list[_Server] = field(init=False)

    def __post_init__(self) -> None:
        self.servers = [_Server(u) for u in self.urls]

    def pick(self) -> _Server:
        now = self.clock()
        healthy = [s for s in self.servers if s.down_until <= now]
        # Least-outstanding would send every new request at once to a server just back from a
        # cool-down (it has none in flight); one trial at a time until it has proven itself.
        proven = [s for s in healthy if s.failures == 0 or s.outstanding == 0]
        candidates = proven or healthy
        if candidates:
            # Ties go to the server listed first, so one server gets warm caches.
            return min(candidates, key=lambda s: s.outstanding)
        return min(self.servers, key=lambda s: s.down_until)

    def failed(self, server: _Server) -> None:
        now = self.clock()
        if server.down_until > now:
            return  # already cooling down: another request saw the same outage
        server.failures += 1
        if len(self.servers) > 1:
            cooldown = min(self.max_cooldown, self.base_cooldown * 2 ** (server.failures - 1))
            server.down_until = now + cooldown

    def succeeded(self, server: _Server) -> None:
        server.failures = 0
        server.down_until = 0.0

    def is_down(self, url: str) -> bool:
        """Whether the server at ``url`` is cooling down now (for status pages and tests)."""
        now = self.clock()
        return any(s.url == url and s.down_until > now for s in self.servers)


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

    async def _resolve_model(self, server: _Server) -> str:
        if self._model:
            return self._model
        try:
            page = await self._client(server.url).models.list()
        except Exception as err:
            raise _translate(err, server.url) from err
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
        known = _dialect_memory.get((url, model))
        return [known] if known else list(DIALECTS)

    async def _generate_on(
        self, server: _Server, model: str, request: GenerationRequest
    ) -> AsyncIterator[Chunk]:
        dialects = self._dialects_to_try(server.url, model, request)
        for position, dialect in enumerate(dialects):
            last = position == len(dialects) - 1
            body = self.request_body(model, request, dialect, server.url)
            try:
                opened = await self._open(server.url, body)
            except openai.APIStatusError as err:
                if err.status_code == 400 and "stream_options" in str(err.message):
                    _no_stream_usage.add(server.url)
                    body = self.request_body(model, request, dialect, server.url)
                    try:
                        opened = await self._open(server.url, body)
                    except Exception as err2:
                        raise _translate(err2, server.url) from err2
                elif not last and err.status_code in _DIALECT_REJECTIONS:
                    continue  # this server does not speak this dialect; try the next
                else:
                    raise _translate(err, server.url) from err
            except Exception as err:
                raise _translate(err, server.url) from err
            if request.schema is not None and not self._forced_dialect:
                _dialect_memory[(server.url, model)] = dialect
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
            if url not in _no_stream_usage:
                body["stream_options"] = {"include_usage": True}
        schema = request.schema
        if schema is not None:
            if dialect == "json_schema":
                body["response_format"] = {
                    "type": "json_schema",
                    "json_schema": {"name": request.schema_name, "schema": schema, "strict": True},
                }
            elif dialect == "guided_json":
                body["guided_json"] = schema
            elif dialect == "json_object_schema":
                body["response_format"] = {"type": "json_object", "schema": schema}
            elif dialect == "json_object":
                body["response_format"] = {"type": "json_object"}
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
            raise _translate(err, url, during_stream=True) from err
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


def _status_message(err: openai.APIStatusError) -> str:
    body = err.body
    detail = None
    if isinstance(body, dict):
        inner = body.get("error", body)
        detail = inner.get("message") if isinstance(inner, dict) else inner
        if detail is None:
            detail = body.get("detail")
    if detail is None:
        text = err.response.text if err.response is not None else ""
        content_type = err.response.headers.get("content-type", "") if err.response else ""
        detail = "an HTML page" if "html" in content_type else text[:200]
    return f"HTTP {err.status_code}: {str(detail).strip()[:300]}"


def _translate(err: BaseException, url: str, *, during_stream: bool = False) -> BackendError:
    """SDK and transport exceptions -> our BackendError family, with a sentence for people."""
    if isinstance(err, BackendError):
        return err
    if isinstance(err, openai.APITimeoutError):
        return TransportError(
            "the server did not answer in time (timed out)", server=url, timed_out=True
        )
    if isinstance(err, openai.APIConnectionError):
        cause = err.__cause__ or err.__context__
        if during_stream:
            return TransportError(f"the stream was cut: {cause or err}", server=url)
        return TransportError(f"cannot connect: {_describe_connect(cause)}", server=url)
    if isinstance(err, openai.APIStatusError):
        status = err.status_code
        message = _status_message(err)
        retry_after = parse_retry_after(err.response.headers if err.response else None)
        if status in (408, 409, 429) or status >= 500:
            return TransportError(message, server=url, status=status, retry_after=retry_after)
        if _CONTEXT_WORDS.search(message):
            return ContextOverflow(message, server=url, status=status)
        return RequestRejected(message, server=url, status=status)
    if isinstance(err, httpx2.TimeoutException):
        return TransportError(
            "the server stopped sending (read timed out)", server=url, timed_out=True
        )
    if isinstance(err, httpx2.HTTPError):
        what = "the stream was cut" if during_stream else "the connection failed"
        return TransportError(f"{what}: {type(err).__name__}: {err}".rstrip(": "), server=url)
    if isinstance(err, openai.APIError):
        # An error event inside the stream, or a reply that is not a chat completion.
        return TransportError(f"bad reply: {err.message}", server=url)
    if isinstance(err, (ValueError, KeyError, TypeError)):
        return TransportError(f"unreadable reply: {type(err).__name__}: {err}", server=url)
    return BackendError(f"{type(err).__name__}: {err}", server=url)


def _describe_connect(cause: BaseException | None) -> str:
    """The root cause of a failed connection, in words (refused, DNS, ...)."""
    chain: list[BaseException] = []
    while cause is not None and len(chain) < 10:
        chain.append(cause)
        cause = cause.__cause__ or cause.__context__
    for err in chain:
        if isinstance(err, ConnectionRefusedError):
            return "connection refused (is the server running?)"
        if isinstance(err, socket.gaierror):
            return f"the host name does not resolve (DNS): {err.strerror or err}"
    for err in reversed(chain):
        if str(err):
            return str(err)
    return "connection error"
