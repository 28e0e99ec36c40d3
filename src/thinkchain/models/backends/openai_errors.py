"""SDK and transport exceptions of an OpenAI-compatible server, as our BackendError family."""

from __future__ import annotations

import email.utils
import re
import socket
import time
from typing import Any

import httpx2
import openai

from thinkchain.chain.backend import BackendError, ContextOverflow, RequestRejected, TransportError

_CONTEXT_WORDS = re.compile(
    r"context length|context window|maximum context|too many tokens|prompt is too long|"
    r"exceeds? the (model'?s )?(max|context)",
    re.I,
)


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


def translate_error(err: BaseException, url: str, *, during_stream: bool = False) -> BackendError:
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
