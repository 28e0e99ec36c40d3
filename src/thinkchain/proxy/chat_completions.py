"""Chat completions produced here (not passed through): reasoning variants and the local model.

Streamed responses hold back their headers until the first real output, so a request that
fails before producing anything (a question too long for the model, an upstream that is down)
still gets its proper status and an OpenAI-shaped error body instead of a 200 stream.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from thinkchain.chain.backend import (
    Backend,
    BackendError,
    Completion,
    ContextOverflow,
    GenerationRequest,
    Message,
    TextChunk,
)
from thinkchain.chain.events import Usage
from thinkchain.proxy import reasoning
from thinkchain.proxy.admission import ChainSlots
from thinkchain.proxy.errors import ProxyError
from thinkchain.proxy.proxy_settings import ReasoningFormat
from thinkchain.proxy.reasoning import Content, Finished, Item, Plan
from thinkchain.proxy.reasoning_format import ChatReasoning
from thinkchain.proxy.reasoning_http import ReasoningRun
from thinkchain.proxy.schemas import ChatCompletionRequest
from thinkchain.proxy.streaming import (
    DONE,
    ChunkWriter,
    event_stream,
    unless_disconnected,
)

log = logging.getLogger("thinkchain.proxy")


def new_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex[:24]}"


def completion_body(
    model: str,
    message: dict[str, Any],
    finish_reason: str,
    usage: dict[str, Any],
    **extra: Any,
) -> dict[str, Any]:
    return {
        "id": new_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
        "usage": usage,
        **extra,
    }


# -- reasoning variants -----------------------------------------------------------------------


async def reasoning_completion(
    request: Request,
    body: ChatCompletionRequest,
    plan: Plan,
    backend: Backend,
    slots: ChainSlots,
    retry_after: int,
    fmt: ReasoningFormat,
) -> Response:
    run = ReasoningRun.start(backend, plan, slots, retry_after, body.model)
    if not body.stream:
        outcome = await run.whole(request)
        return JSONResponse(
            completion_body(
                body.model,
                ChatReasoning(fmt).message(outcome.reasoning, outcome.answer or ""),
                outcome.finish_reason,
                outcome.usage_dict(),
                thinkchain=outcome.trace,
            )
        )
    items = await run.opened(request)
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    writer = ChunkWriter(new_id(), body.model)
    return event_stream(
        _reasoning_events(items, run, writer, ChatReasoning(fmt), include_usage), run.close
    )


async def _reasoning_events(
    items: AsyncGenerator[Item, None],
    run: ReasoningRun,
    writer: ChunkWriter,
    steps: ChatReasoning,
    include_usage: bool,
) -> AsyncGenerator[bytes, None]:
    yield writer.chunk({"role": "assistant", "content": ""})
    try:
        async with aclosing(items) as every_item:
            async for item in every_item:
                if isinstance(item, Content):
                    yield writer.chunk(steps.content(item.text))
                elif isinstance(item, Finished):
                    outcome = item.outcome
                    try:
                        run.finished(outcome)
                    except ProxyError as err:
                        yield err.sse()
                        return
                    closing = steps.close()
                    if closing is not None:
                        yield writer.chunk(closing)
                    yield writer.chunk({}, outcome.finish_reason, thinkchain=outcome.trace)
                    if include_usage:
                        yield writer.usage(outcome.usage_dict())
                    yield DONE
                    return
                else:
                    delta = steps.reasoning(item.text)
                    if delta is not None:
                        yield writer.chunk(delta)
    except Exception:  # a bug: the stream says so in OpenAI's shape; the log has the details
        log.exception("a reasoning stream failed")
        yield ProxyError(500, "internal error", code="internal_error").sse()


# -- the local model as itself ----------------------------------------------------------------


_DEFAULT_PLAIN_MAX_TOKENS = 1024


def _plain_messages(body: ChatCompletionRequest) -> list[Message]:
    out: list[Message] = []
    for i, message in enumerate(body.messages):
        converted = reasoning._as_context(message, i)
        if converted is not None:
            out.append(converted)
    if not out:
        raise ProxyError(400, "the messages hold no text", param="messages")
    return out


def _plain_usage(usage: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
    }


def _backend_error(err: BackendError) -> ProxyError:
    if isinstance(err, ContextOverflow):
        return ProxyError(400, err.message, param="messages", code="context_length_exceeded")
    return ProxyError(502, f"the model failed: {err.message}", code="model_error")


async def plain_completion(
    request: Request, body: ChatCompletionRequest, backend: Backend
) -> Response:
    """A chat completion straight from the in-process model, without reasoning."""
    generation = GenerationRequest(
        messages=_plain_messages(body),
        max_tokens=min(
            body.max_completion_tokens or body.max_tokens or _DEFAULT_PLAIN_MAX_TOKENS, 32768
        ),
        temperature=body.temperature if body.temperature is not None else 0.7,
        seed=body.seed,
        purpose="plain",
    )
    chunks = backend.generate(generation)

    async def collect() -> tuple[str, Completion]:
        parts: list[str] = []
        async for chunk in chunks:
            if isinstance(chunk, TextChunk):
                parts.append(chunk.text)
            else:
                return "".join(parts), chunk
        raise BackendError("the model stopped without finishing its reply")

    if not body.stream:
        try:
            text, done = await unless_disconnected(request, collect())
        except BackendError as err:
            raise _backend_error(err) from None
        finally:
            await chunks.aclose()  # type: ignore[attr-defined]
        return JSONResponse(
            completion_body(
                body.model,
                {"role": "assistant", "content": text},
                done.finish_reason or "stop",
                _plain_usage(done.usage),
            )
        )

    async def first() -> TextChunk | Completion:
        return await chunks.__anext__()

    try:
        head = await unless_disconnected(request, first())
    except BaseException as err:
        await chunks.aclose()  # type: ignore[attr-defined]
        if isinstance(err, BackendError):
            raise _backend_error(err) from None
        if isinstance(err, StopAsyncIteration):
            raise ProxyError(502, "the model sent nothing", code="model_error") from None
        raise
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    writer = ChunkWriter(new_id(), body.model)

    async def events() -> AsyncGenerator[bytes, None]:
        yield writer.chunk({"role": "assistant", "content": ""})
        try:
            chunk: TextChunk | Completion = head
            while True:
                if isinstance(chunk, TextChunk):
                    if chunk.text:
                        yield writer.chunk({"content": chunk.text})
                else:
                    yield writer.chunk({}, chunk.finish_reason or "stop")
                    if include_usage:
                        yield writer.usage(_plain_usage(chunk.usage))
                    yield DONE
                    return
                chunk = await chunks.__anext__()
        except BackendError as err:
            yield _backend_error(err).sse()
        except StopAsyncIteration:
            yield ProxyError(502, "the model stopped mid-reply", code="model_error").sse()

    async def close() -> None:
        await chunks.aclose()  # type: ignore[attr-defined]

    return event_stream(events(), close)
