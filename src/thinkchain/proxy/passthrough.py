"""Requests for a plain upstream model go straight through, bytes untouched, streaming included.

The client's body is sent as it came; the upstream's status, body and content headers come back
as they were.  Only authentication changes hands: the client's key is the proxy's, so it is
replaced by the upstream's own key (or dropped).  Among several upstreams serving the model,
the one with the fewest requests in flight goes first; one that cannot be reached is skipped.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field

import httpx
from starlette.responses import Response

from thinkchain.proxy.catalog import ModelInfo
from thinkchain.proxy.errors import ProxyError
from thinkchain.proxy.proxy_settings import ProxySettings
from thinkchain.proxy.streaming import ClosingStreamingResponse

log = logging.getLogger("thinkchain.proxy")

# Response headers that describe the body (kept) as opposed to this hop's connection (dropped).
_KEPT_RESPONSE_HEADERS = {
    "content-type",
    "content-encoding",
    "cache-control",
    "retry-after",
    "retry-after-ms",
    "x-request-id",
    "openai-processing-ms",
}
_FORWARDED_REQUEST_HEADERS = {"content-type", "accept", "accept-encoding", "user-agent"}
# What a server without an endpoint answers; how much of its body is quoted back.
_MISSING_STATUSES = (404, 405, 501)
_SAID_BYTES = 500


def _upstream_words(body: bytes) -> str:
    """The message in an upstream's error body, printable and short, or ''."""
    text = body.decode("utf-8", "replace")
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        error = data.get("error")
        message = error.get("message") if isinstance(error, dict) else data.get("detail", error)
        text = message if isinstance(message, str) else ""
    elif text.lstrip().startswith("<"):
        return ""  # an HTML page says nothing worth quoting
    text = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return text[:200]


@dataclass
class Forwarder:
    settings: ProxySettings
    http: httpx.AsyncClient
    _in_flight: dict[str, int] = field(default_factory=dict)

    def _order(self, upstreams: tuple[str, ...]) -> list[str]:
        # Stable sort: ties keep the configured order, so one server gets warm caches.
        return sorted(upstreams, key=lambda url: self._in_flight.get(url, 0))

    def _headers(self, incoming: dict[str, str]) -> dict[str, str]:
        headers = {k: v for k, v in incoming.items() if k.lower() in _FORWARDED_REQUEST_HEADERS}
        # Bytes are relayed undecoded: never ask for an encoding the client did not accept.
        headers.setdefault("accept-encoding", "identity")
        key = self.settings.upstream_api_key
        if key is not None:
            headers["Authorization"] = f"Bearer {key.get_secret_value()}"
        return headers

    async def forward(
        self,
        model: ModelInfo,
        path: str,
        body: bytes,
        incoming: dict[str, str],
        *,
        explain_missing: bool = False,
    ) -> Response:
        """Send ``body`` to ``{upstream}{path}`` and stream the answer back as it arrives.

        With ``explain_missing``, an upstream that answers 404, 405 or 501 (a server without
        the endpoint: many serve chat completions only) gets an error that says so, with the
        upstream's own words, instead of its bare status.
        """
        headers = self._headers(incoming)
        last_error: ProxyError | None = None
        for url in self._order(model.upstreams):
            request = self.http.build_request("POST", f"{url}{path}", content=body, headers=headers)
            self._in_flight[url] = self._in_flight.get(url, 0) + 1
            try:
                upstream = await self.http.send(request, stream=True)
            except httpx.TimeoutException:
                self._done(url)
                raise ProxyError(
                    504, f"the upstream {url} did not answer in time", code="timeout"
                ) from None
            except httpx.HTTPError as err:
                self._done(url)
                last_error = ProxyError(
                    502,
                    f"cannot reach the upstream {url}: {type(err).__name__}",
                    code="upstream_unreachable",
                )
                log.warning("pass-through to %s failed: %s", url, type(err).__name__)
                continue  # nothing was sent yet: the next upstream may answer
            if explain_missing and upstream.status_code in _MISSING_STATUSES:
                error = await self._missing(upstream, url, path)
                self._done(url)
                raise error
            kept = {
                k: v for k, v in upstream.headers.items() if k.lower() in _KEPT_RESPONSE_HEADERS
            }

            async def close(upstream: httpx.Response = upstream, url: str = url) -> None:
                await upstream.aclose()  # a client that left takes the upstream request with it
                self._done(url)

            return ClosingStreamingResponse(
                self._relay(upstream, url),
                status_code=upstream.status_code,
                headers=kept,
                on_close=close,
            )
        assert last_error is not None
        raise last_error

    async def _relay(self, upstream: httpx.Response, url: str) -> AsyncGenerator[bytes, None]:
        """The upstream's bytes as they arrive, undecoded."""
        try:
            async for chunk in upstream.aiter_raw():
                yield chunk
        except httpx.HTTPError as err:
            # Headers are out already; the honest thing left is to end where the upstream did.
            log.warning(
                "the upstream %s broke off a pass-through reply: %s", url, type(err).__name__
            )

    async def _missing(self, upstream: httpx.Response, url: str, path: str) -> ProxyError:
        said = b""
        try:
            async for chunk in upstream.aiter_raw():
                said += chunk
                if len(said) >= _SAID_BYTES:
                    break
        except httpx.HTTPError:
            pass
        finally:
            await upstream.aclose()
        words = _upstream_words(said[:_SAID_BYTES])
        return ProxyError(
            upstream.status_code,
            f"the upstream {url} answered HTTP {upstream.status_code} to POST /v1{path}"
            f"{f' ({words})' if words else ''}: it does not seem to serve that endpoint. Ask "
            f"this model through /v1/chat/completions, or ask its reasoning variant, which this "
            f"proxy serves on both",
            code="unsupported_endpoint",
        )

    def _done(self, url: str) -> None:
        self._in_flight[url] = max(0, self._in_flight.get(url, 0) - 1)
