"""OpenAI-shaped errors, and handlers that turn every failure into one (never a traceback).

Clients built on the ``openai`` SDK read ``{"error": {"message", "type", "param", "code"}}``
and pick the exception class from the status, so the status matters as much as the text.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from thinkchain.chain.events import ChainError

log = logging.getLogger("thinkchain.proxy")

# What each status means to an OpenAI client (the "type" of the error body).
_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
    499: "client_closed_request",
    500: "server_error",
    502: "upstream_error",
    503: "service_unavailable",
    504: "upstream_timeout",
}


class ProxyError(Exception):
    """An error a client should see, with its HTTP status."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.type = type or _TYPES.get(status, "server_error" if status >= 500 else "error")
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)

    def sse(self) -> bytes:
        """The error as a stream event: the ``openai`` SDK raises APIError when it reads one."""
        return b"data: " + json.dumps(self.body(), ensure_ascii=False).encode() + b"\n\n"


def bad_request(message: str, *, param: str | None = None, code: str | None = None) -> ProxyError:
    return ProxyError(400, message, param=param, code=code)


def describe_validation(err: ValidationError | RequestValidationError) -> tuple[str, str | None]:
    """One sentence for people, and the parameter it is about (dotted, like OpenAI's)."""
    parts = []
    first_param: str | None = None
    for item in err.errors()[:5]:
        loc = [str(p) for p in item.get("loc", ()) if p not in ("body",)]
        where = ".".join(loc)
        if first_param is None and where:
            first_param = where
        message = str(item.get("msg", "invalid"))
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts) or "invalid request", first_param


def from_chain_error(error: ChainError) -> ProxyError:
    """The HTTP status of a chain that ended without an answer."""
    kind = error.kind
    if kind == "invalid_input":
        return ProxyError(400, error.message, param="messages", code="invalid_question")
    if kind == "context_overflow":
        return ProxyError(400, error.message, param="messages", code="context_length_exceeded")
    if kind == "backend_error":
        if error.timed_out:
            return ProxyError(504, f"the upstream timed out: {error.message}", code="timeout")
        return ProxyError(502, f"the upstream failed: {error.message}", code="upstream_error")
    if kind in ("step_failed", "answer_failed"):
        return ProxyError(502, f"the model failed: {error.message}", code=kind)
    if kind == "cancelled":
        return ProxyError(503, "the chain was cancelled", code="cancelled")
    return ProxyError(502, error.message, code=kind)


def install_handlers(app: FastAPI) -> None:
    """Every error reaches the client OpenAI-shaped, with its status; tracebacks stay in logs."""

    async def proxy_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ProxyError)
        return exc.response()

    async def validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, (RequestValidationError, ValidationError))
        message, param = describe_validation(exc)
        return bad_request(message, param=param).response()

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        headers = dict(exc.headers or {})
        detail = exc.detail if isinstance(exc.detail, str) else "request failed"
        if exc.status_code == 404:
            detail = f"no such endpoint: {request.method} {request.url.path}"
        return ProxyError(exc.status_code, detail, headers=headers).response()

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        # A bug: the details go to the log for the operator, never to the client.
        log.error("internal error on %s %s", request.method, request.url.path, exc_info=exc)
        return ProxyError(500, "internal error", code="internal_error").response()

    app.add_exception_handler(ProxyError, proxy_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(ValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)
