"""Streaming responses that stop their producer the moment the client leaves.

Starlette's own StreamingResponse notices a disconnect only on some ASGI versions and never
closes the body iterator, which would leave a chain (and its upstream requests) running for
nobody until garbage collection.  Here a disconnect cancels the stream at once and the iterator
is always closed, whatever ended the response.  Also: the chat-completion chunk format, and a
race between a coroutine and the client's disconnect for responses that are not streamed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import anyio
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from thinkchain.proxy.errors import ProxyError

T = TypeVar("T")

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
DONE = b"data: [DONE]\n\n"


class ClosingStreamingResponse(StreamingResponse):
    """Streams an async generator; a client disconnect cancels it, and it is always closed."""

    def __init__(
        self,
        content: AsyncGenerator[bytes, None],
        *,
        status_code: int = 200,
        headers: dict[str, str] | None = None,
        media_type: str | None = None,
        on_close: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        super().__init__(content, status_code=status_code, headers=headers, media_type=media_type)
        self._generator = content
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            async with anyio.create_task_group() as group:

                async def stream() -> None:
                    await self.stream_response(send)
                    group.cancel_scope.cancel()

                group.start_soon(stream)
                await self.listen_for_disconnect(receive)
                group.cancel_scope.cancel()  # the client left: stop producing for nobody
        except OSError:
            pass  # the socket broke while sending: the client is gone as well
        finally:
            with anyio.CancelScope(shield=True):
                await self._generator.aclose()
                if self._on_close is not None:
                    await self._on_close()


def event_stream(
    content: AsyncGenerator[bytes, None], on_close: Callable[[], Awaitable[None]]
) -> ClosingStreamingResponse:
    """Server-sent events from ``content``, never cached or buffered on the way."""
    return ClosingStreamingResponse(
        content, headers=SSE_HEADERS, media_type="text/event-stream", on_close=on_close
    )


class ClientGone(Exception):
    """The client disconnected while its (not streamed) request was being worked on."""


async def _wait_for_disconnect(request: Request) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def unless_disconnected(request: Request, work: Coroutine[Any, Any, T]) -> T:
    """Run ``work``; if the client disconnects first, cancel it and raise ClientGone."""
    task: asyncio.Task[T] = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_wait_for_disconnect(request))
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            return task.result()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        raise ClientGone()
    finally:
        watcher.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


class ChunkWriter:
    """``chat.completion.chunk`` events of one streamed completion, as SSE bytes."""

    def __init__(self, completion_id: str, model: str, created: int | None = None) -> None:
        self.id = completion_id
        self.model = model
        self.created = created if created is not None else int(time.time())

    def _event(self, payload: dict[str, Any]) -> bytes:
        return b"data: " + json.dumps(payload, ensure_ascii=False).encode() + b"\n\n"

    def chunk(self, delta: dict[str, Any], finish_reason: str | None = None, **extra: Any) -> bytes:
        return self._event(
            {
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
                **extra,
            }
        )

    def usage(self, usage: dict[str, Any]) -> bytes:
        """The last chunk when the client asked for ``stream_options.include_usage``."""
        return self._event(
            {
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "choices": [],
                "usage": usage,
            }
        )

    @staticmethod
    def error(error: ProxyError) -> bytes:
        return error.sse()
