"""The proxy's FastAPI application: ``create_app(settings)`` builds one, with no module state.

Routes:
    GET  /health                  liveness, how many chains run, code steps (no key needed)
    GET  /v1/models               each model as itself and as its reasoning variant
    GET  /v1/models/{model}       one of them
    POST /v1/chat/completions     pass-through, reasoning variant, or the local model
    POST /v1/responses            the Responses API: pass-through, or reasoning variant
    GET  /openapi.json, /docs     the API document (FastAPI's)
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.security import HTTPBearer
from pydantic.json_schema import models_json_schema
from starlette.responses import JSONResponse, Response

from thinkchain import __version__
from thinkchain.chain.backend import Backend
from thinkchain.models.prefixes import prepare_in_background
from thinkchain.proxy import chat_completions as chat
from thinkchain.proxy import code_steps, reasoning_format, responses
from thinkchain.proxy.admission import BodyLimitMiddleware, ChainSlots, check_bearer
from thinkchain.proxy.catalog import Catalog
from thinkchain.proxy.errors import ProxyError, bad_request, install_handlers
from thinkchain.proxy.passthrough import Forwarder
from thinkchain.proxy.proxy_settings import ProxySettings
from thinkchain.proxy.response_schemas import ResponseObject, ResponsesRequest
from thinkchain.proxy.response_store import ResponseStore
from thinkchain.proxy.schemas import (
    ChatCompletion,
    ChatCompletionRequest,
    ErrorResponse,
    Health,
    ModelCard,
    ModelList,
)
from thinkchain.proxy.streaming import ClientGone

log = logging.getLogger("thinkchain.proxy")

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": text}
    for status, text in {
        400: "Invalid request",
        401: "Missing or wrong API key",
        404: "Unknown model",
        413: "Body too large",
        429: "Too many chains at once (see Retry-After)",
        502: "The upstream failed",
        504: "The upstream timed out",
    }.items()
}


def _documented(request_schema: str, reply: str) -> dict[str, Any]:
    """What the API document says of a POST route that reads its own body: the request's
    schema, its errors, and a reply that may be JSON or a stream of server-sent events."""
    return {
        "responses": {
            **_ERRORS,
            # Each event's data is a JSON chunk (or "[DONE]"): no one schema fits them all.
            200: {"description": reply, "content": {"text/event-stream": {"schema": {}}}},
        },
        "openapi_extra": {
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {"$ref": f"#/components/schemas/{request_schema}"}
                    }
                },
            }
        },
    }


@dataclass
class ProxyState:
    """Everything one app instance holds; reached through ``app.state.proxy``."""

    settings: ProxySettings
    http: httpx.AsyncClient
    catalog: Catalog
    forwarder: Forwarder
    slots: ChainSlots
    responses: ResponseStore


def create_app(settings: ProxySettings, *, local_backend: Backend | None = None) -> FastAPI:
    """A proxy in front of ``settings.upstreams``, or of ``local_backend`` when there are none."""
    if not settings.upstreams and local_backend is None:
        raise ValueError("give upstream servers or an in-process backend to serve")
    http = httpx.AsyncClient(
        timeout=httpx.Timeout(
            connect=settings.connect_timeout,
            read=settings.read_timeout,
            write=settings.read_timeout,
            pool=settings.read_timeout,
        ),
        limits=httpx.Limits(max_connections=1000, max_keepalive_connections=100),
        follow_redirects=False,
    )
    state = ProxyState(
        settings=settings,
        http=http,
        catalog=Catalog(settings, http, local_backend if not settings.upstreams else None),
        forwarder=Forwarder(settings, http),
        slots=ChainSlots(settings.max_concurrent_chains),
        responses=ResponseStore(settings.max_stored_responses),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            await state.catalog.models()
        except ProxyError as err:  # the upstream may come up later; requests will ask again
            log.warning("no model list yet: %s", err.message)
        if state.catalog.local_backend is not None:
            # The in-process model prepares its prompt prefixes before the first request.
            tools = settings.tools
            prepare_in_background(
                state.catalog.local_backend,
                lambda: [(), tools] if tools else [()],
                modes=[settings.chain.mode],
            )
        yield
        await http.aclose()

    app = FastAPI(
        title="thinkchain reasoning proxy",
        version=__version__,
        description=(
            "OpenAI-compatible chat completions and Responses API. Every upstream model is "
            "served as itself (passed through untouched) and as a reasoning variant that "
            "thinks in visible steps. Chat completions carry the steps in `reasoning_content` "
            "by default (`--reasoning-format`, or per request `thinkchain.reasoning_format`: "
            "`reasoning`, `think` tags in `content`, or `none`), the answer in `content`; "
            "responses carry them in a `reasoning` output item's summary, the answer in a "
            "`message` item."
        ),
        lifespan=lifespan,
    )
    app.state.proxy = state
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    install_handlers(app)

    async def client_gone(request: Request, exc: Exception) -> Response:
        # Nobody reads this: the client left, and its chain was cancelled with it.
        log.info("client left before its answer: %s %s", request.method, request.url.path)
        return ProxyError(499, "client closed the request").response()

    app.add_exception_handler(ClientGone, client_gone)
    app.include_router(_health_router(state))
    app.include_router(_api_router(state))
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _health_router(state: ProxyState) -> APIRouter:
    router = APIRouter()

    @router.get("/health", response_model=Health, tags=["health"])
    async def health() -> Health:
        return Health(
            chains_running=state.slots.running,
            max_concurrent_chains=state.slots.limit,
            tools=list(state.settings.tools),
        )

    return router


def _api_router(state: ProxyState) -> APIRouter:
    keys = state.settings.key_values()
    bearer = HTTPBearer(auto_error=False, description="One of the proxy's API keys.")

    async def authorised(request: Request) -> None:
        check_bearer(request.headers.get("authorization"), keys)

    # The bearer scheme itself only documents the key in the OpenAPI document; the check and
    # its OpenAI-shaped 401 are ours.
    guards = [Depends(bearer), Depends(authorised)] if keys else []
    router = APIRouter(prefix="/v1", dependencies=guards)

    @router.get("/models", response_model=ModelList, responses=_ERRORS, tags=["models"])
    async def list_models() -> JSONResponse:
        return JSONResponse({"object": "list", "data": await state.catalog.cards()})

    @router.get(
        "/models/{model_id:path}", response_model=ModelCard, responses=_ERRORS, tags=["models"]
    )
    async def get_model(model_id: str) -> JSONResponse:
        for card in await state.catalog.cards():
            if card["id"] == model_id:
                return JSONResponse(card)
        raise ProxyError(
            404, f"the model {model_id!r} does not exist", param="model", code="model_not_found"
        )

    @router.post(
        "/chat/completions",
        response_model=ChatCompletion,
        tags=["chat"],
        **_documented(
            "ChatCompletionRequest",
            "A chat completion, or with `stream: true` a stream of `chat.completion.chunk` "
            "server-sent events ending with `data: [DONE]`",
        ),
    )
    async def chat_completions(request: Request) -> Response:
        raw = await request.body()
        data = _json_object(raw)
        model = data.get("model")
        if not isinstance(model, str) or not model:
            raise bad_request("'model' must name a model", param="model")
        target = await state.catalog.resolve(model)
        if target.kind == "plain" and not target.model.local:
            headers = dict(request.headers.items())
            return await state.forwarder.forward(target.model, "/chat/completions", raw, headers)
        body = ChatCompletionRequest.model_validate(data)
        backend = state.catalog.backend_for(target.model)
        if target.kind == "plain":
            return await chat.plain_completion(request, body, backend)
        plan = code_steps.plan(body, state.settings)
        return await chat.reasoning_completion(
            request,
            body,
            plan,
            backend,
            state.slots,
            state.settings.retry_after_seconds,
            reasoning_format.choose(body, state.settings),
        )

    @router.post(
        "/responses",
        response_model=ResponseObject,
        tags=["responses"],
        **_documented(
            "ResponsesRequest",
            "A response, or with `stream: true` a stream of server-sent events "
            "(`response.created` ... `response.completed`)",
        ),
    )
    async def create_response(request: Request) -> Response:
        raw = await request.body()
        return await responses.create(request, _json_object(raw), raw, state)

    return router


def _json_object(raw: bytes) -> dict[str, Any]:
    """The body as a JSON object, or a 400 that says what is wrong with it."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise bad_request(f"the body is not valid UTF-8 (byte {err.start})") from None
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as err:
        raise bad_request(f"the body is not valid JSON: {err}") from None
    if not isinstance(data, dict):
        raise bad_request("the body must be a JSON object")
    return data


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document plus the request schema, which it cannot see (the body is read raw)."""
    if app.openapi_schema is None:
        document = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        _, defs = models_json_schema(
            [(ChatCompletionRequest, "validation"), (ResponsesRequest, "validation")],
            ref_template="#/components/schemas/{model}",
        )
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        for name, schema in defs.get("$defs", {}).items():
            schemas.setdefault(name, schema)
        app.openapi_schema = document
    return app.openapi_schema
