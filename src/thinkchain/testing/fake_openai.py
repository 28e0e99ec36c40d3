"""A real OpenAI-compatible HTTP server on 127.0.0.1 that plays a script.

Used by the tests and benchmarks of the HTTP backend and the proxy.  It speaks real HTTP
over a real socket, so any client works (the ``openai`` SDK >= 3 uses httpx2, which mocking
libraries do not intercept), and it can misbehave on purpose: errors with ``Retry-After``,
stalls, streams cut in the middle, HTML instead of JSON, servers that reject a JSON-schema
dialect the way llama-cpp-python's server does.

Each POST to ``/v1/chat/completions`` takes the next item of the script; when the script is
empty, ``responder(body)`` decides.  With ``responses=True`` it also answers ``/v1/responses``
(always "The answer is 42.", whole or streamed), for pass-through tests.  Every request is
recorded for assertions.
"""

from __future__ import annotations

import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable
from http.server import ThreadingHTTPServer
from typing import Any

from thinkchain.testing.fake_handler import FakeHandler
from thinkchain.testing.fake_script import (
    FakeCut,
    FakeError,
    FakeItem,
    FakeRaw,
    FakeReply,
    FakeStall,
    RecordedRequest,
    default_responder,
)

__all__ = [
    "FakeCut",
    "FakeError",
    "FakeItem",
    "FakeOpenAIServer",
    "FakeRaw",
    "FakeReply",
    "FakeStall",
    "RecordedRequest",
    "default_responder",
]


class FakeOpenAIServer:
    def __init__(
        self,
        script: Iterable[FakeItem] = (),
        *,
        responder: Callable[[dict[str, Any]], FakeItem] = default_responder,
        models: Iterable[str] = ("fake-model",),
        owned_by: str = "fake",
        reject_dialects: Iterable[str] = (),
        reject_status: int = 500,
        token_delay: float = 0.0,
        require_key: str | None = None,
        responses: bool = False,
        port: int = 0,
        backlog: int = 128,
    ) -> None:
        self.script: deque[FakeItem] = deque(script)
        self.responder = responder
        self.models = list(models)
        self.owned_by = owned_by
        # "json_schema", "json_object_schema", "guided_json", "json_object", "stream_options"
        self.reject_dialects = set(reject_dialects)
        self.reject_status = reject_status
        self.token_delay = token_delay
        self.require_key = require_key
        # Serve POST /v1/responses too (a canned answer), as OpenAI, vLLM and llama.cpp do.
        self.responses = responses
        self.requests: list[RecordedRequest] = []
        # Replies the client stopped reading before they were complete (it hung up on us).
        self.client_disconnects = 0
        self.lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = port  # 0: any free port, known once started
        # Pending connections the socket queues; socketserver's default of 5 makes a burst of
        # concurrent clients (benchmarks) wait for SYN retransmits instead of the server.
        self.backlog = backlog

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> FakeOpenAIServer:
        server = self

        class Handler(FakeHandler):
            fake = server

        class Server(ThreadingHTTPServer):
            request_queue_size = self.backlog

            def handle_error(self, request: Any, client_address: Any) -> None:
                # A client may hang up at any point (mid-body, or while the connection waits
                # for its next keep-alive request): its right, and not a fault of this server.
                # socketserver would print a traceback for it into whichever test runs then.
                if isinstance(sys.exc_info()[1], ConnectionError):
                    return
                super().handle_error(request, client_address)

        httpd = Server(("127.0.0.1", self.port), Handler)
        httpd.daemon_threads = True
        self._httpd = httpd
        self.port = httpd.server_address[1]
        self._thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    # -- script -------------------------------------------------------------------------------

    def push(self, *items: FakeItem) -> None:
        with self.lock:
            self.script.extend(items)

    def chat_requests(self) -> list[dict[str, Any]]:
        """Bodies of the chat-completion requests received, in order."""
        return [r.body for r in self.requests if r.path.endswith("/chat/completions")]

    def next_item(self, body: dict[str, Any]) -> FakeItem:
        """What to play for a chat request: the script's next item, else the responder's."""
        with self.lock:
            if self.script:
                return self.script.popleft()
        return self.responder(body)

    def rejection(self, body: dict[str, Any]) -> str | None:
        """Why a server without the request's dialect would refuse it, or None."""
        fmt = body.get("response_format") or {}
        kind = fmt.get("type")
        if kind == "json_schema" and "json_schema" in self.reject_dialects:
            return "response_format type json_schema is not supported"
        if (
            kind == "json_object"
            and "schema" in fmt
            and "json_object_schema" in self.reject_dialects
        ):
            return "response_format.schema is not supported"
        if kind == "json_object" and "schema" not in fmt and "json_object" in self.reject_dialects:
            return "response_format json_object is not supported"
        if "guided_json" in body and "guided_json" in self.reject_dialects:
            return "unknown field guided_json"
        if "stream_options" in body and "stream_options" in self.reject_dialects:
            return "stream_options is not supported"
        return None
