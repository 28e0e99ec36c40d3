"""What protects the server: body size, chains at once, and bearer keys."""

from __future__ import annotations

import hmac
from collections.abc import Sequence

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from thinkchain.proxy.errors import ProxyError

# A body over the limit is still read (and thrown away) up to this many times the limit, so
# the client, which is usually still sending it, gets to read the 413 instead of a reset.
_DRAIN_FACTOR = 16


class BodyLimitMiddleware:
    """Answers 413 to bodies over ``max_bytes`` before the app sees them.

    The body is read here (it is needed whole anyway) and handed on in one message, so a body
    without a Content-Length, sent in chunks, is limited as well as one that announces its size.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        announced = _content_length(scope)
        too_large = announced is not None and announced > self.max_bytes
        drain_limit = self.max_bytes * _DRAIN_FACTOR
        body = bytearray()
        received = 0
        more = not (announced is not None and announced > drain_limit)
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client left before it finished sending; nobody to answer
            chunk = message.get("body", b"")
            more = message.get("more_body", False)
            received += len(chunk)
            if received > self.max_bytes:
                too_large = True
            if too_large:
                body.clear()  # the body is refused; keep nothing of it
                if received > drain_limit:
                    break
            else:
                body.extend(chunk)
        if too_large:
            error = ProxyError(
                413,
                f"the request body is larger than this server's limit of {self.max_bytes:,} bytes",
                code="request_too_large",
            )
            await error.response()(scope, receive, send)
            return
        await self.app(scope, _replay(bytes(body), receive), send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # afterwards only http.disconnect can come

    return replay


class ChainSlots:
    """How many chains may run at once.  Not a queue: a request over the limit is refused."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.running = 0

    def acquire(self, retry_after: int) -> None:
        if self.running >= self.limit:
            raise ProxyError(
                429,
                f"this server runs at most {self.limit} reasoning chains at once; "
                f"try again in {retry_after} s",
                code="too_many_chains",
                headers={"Retry-After": str(retry_after)},
            )
        self.running += 1

    def release(self) -> None:
        self.running = max(0, self.running - 1)


def check_bearer(authorization: str | None, keys: Sequence[str]) -> None:
    """401 unless ``Authorization: Bearer <key>`` names a configured key (none: open server).

    The presented key is never echoed or logged; comparison is constant-time.
    """
    if not keys:
        return
    presented = ""
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer":
            presented = value.strip()
    # Every key is compared, so timing does not tell which one (or how many) came close.
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(presented.encode(), key.encode())
    if not matched:
        message = (
            "missing API key: send 'Authorization: Bearer <key>'"
            if not presented
            else "invalid API key"
        )
        raise ProxyError(
            401, message, code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"}
        )
