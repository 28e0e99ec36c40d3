"""A real OpenAI-compatible HTTP server on 127.0.0.1 that plays a script.

Used by the tests and benchmarks of the HTTP backend and the proxy.  It speaks real HTTP
over a real socket, so any client works (the ``openai`` SDK >= 3 uses httpx2, which mocking
libraries do not intercept), and it can misbehave on purpose: errors with ``Retry-After``,
stalls, streams cut in the middle, HTML instead of JSON, servers that reject a JSON-schema
dialect the way llama-cpp-python's server does.

Each POST to ``/v1/chat/completions`` takes the next item of the script; when the script is
empty, ``responder(body)`` decides.  Every request is recorded for assertions.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Union


@dataclass(frozen=True)
class FakeReply:
    text: str = ""
    finish_reason: str = "stop"
    chunk_size: int | None = None  # characters per streamed chunk; None: word by word
    delay: float = 0.0  # seconds before each streamed chunk (the per-token delay)
    first_delay: float = 0.0  # seconds before the first chunk (time to first token)
    usage: tuple[int, int] | None = None  # (prompt, completion); None: counted
    cached_tokens: int | None = None
    tool_calls: list[dict[str, Any]] | None = None
    send_usage: bool = True  # include usage when the client asks for it


@dataclass(frozen=True)
class FakeError:
    status: int
    message: str = "error"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass(frozen=True)
class FakeRaw:
    """Any status and body, e.g. an HTML error page from a proxy in front of the model."""

    status: int = 200
    body: bytes = b"<html><body>Bad gateway</body></html>"
    content_type: str = "text/html"
    delay: float = 0.0


@dataclass(frozen=True)
class FakeCut:
    """Stream part of a reply, then drop the connection in the middle of the stream."""

    text_before: str = ""
    delay: float = 0.0


@dataclass(frozen=True)
class FakeStall:
    """Accept the request and say nothing for ``seconds`` (then close the connection)."""

    seconds: float = 30.0
    after_headers: bool = False  # stall after sending the stream's headers (a read stall)


FakeItem = Union[FakeReply, FakeError, FakeRaw, FakeCut, FakeStall, str]


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: Any


def _count(text: str) -> int:
    return max(1, len(text.split())) if text else 0


def default_responder(body: dict[str, Any]) -> FakeItem:
    """Valid steps when a schema is asked for, a short answer otherwise."""
    fmt = body.get("response_format") or {}
    wants_json = fmt.get("type") in ("json_schema", "json_object") or "guided_json" in body
    if wants_json:
        steps = sum(1 for m in body.get("messages", []) if m.get("role") == "assistant")
        action = "final_answer" if steps >= 2 else "continue"
        return json.dumps(
            {
                "title": f"Step {steps + 1}",
                "content": f"Reasoning {steps + 1}.",
                "next_action": action,
            }
        )
    return "The answer is 42."


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
        self.requests: list[RecordedRequest] = []
        # Replies the client stopped reading before they were complete (it hung up on us).
        self.client_disconnects = 0
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = port  # 0: any free port, known once started
        # Pending connections the socket queues; socketserver's default of 5 makes a burst of
        # concurrent clients (benchmarks) wait for SYN retransmits instead of the server.
        self.backlog = backlog

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> FakeOpenAIServer:
        server = self

        class Handler(_Handler):
            fake = server

        class Server(ThreadingHTTPServer):
            request_queue_size = self.backlog

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
        with self._lock:
            self.script.extend(items)

    def chat_requests(self) -> list[dict[str, Any]]:
        """Bodies of the chat-completion requests received, in order."""
        return [r.body for r in self.requests if r.path.endswith("/chat/completions")]

    def _next(self, body: dict[str, Any]) -> FakeItem:
        with self._lock:
            if self.script:
                return self.script.popleft()
        return self.responder(body)

    def _rejects(self, body: dict[str, Any]) -> str | None:
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


def _well_formed(body: Any) -> bool:
    """The shape the script and the default responder read: messages of objects, and so on."""
    if not isinstance(body, dict):
        return False
    messages = body.get("messages", [])
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        return False
    return all(
        isinstance(body.get(key) or {}, dict) for key in ("response_format", "stream_options")
    )


class _Handler(BaseHTTPRequestHandler):
    fake: FakeOpenAIServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _record(self, body: Any) -> None:
        with self.fake._lock:
            self.fake.requests.append(
                RecordedRequest(
                    self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body
                )
            )

    def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _authorised(self) -> bool:
        if self.fake.require_key is None:
            return True
        if self.headers.get("Authorization") == f"Bearer {self.fake.require_key}":
            return True
        self._send_json(401, {"error": {"message": "invalid api key", "type": "auth"}})
        return False

    def do_GET(self) -> None:
        self._record(None)
        if not self._authorised():
            return
        if self.path.rstrip("/").endswith("/models"):
            data = [
                {"id": m, "object": "model", "created": 0, "owned_by": self.fake.owned_by}
                for m in self.fake.models
            ]
            self._send_json(200, {"object": "list", "data": data})
        else:
            self._send_json(404, {"error": {"message": "not found", "type": "not_found"}})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            self._record(raw)
            self._send_json(400, {"error": {"message": "invalid JSON body"}})
            return
        self._record(body)
        if not self._authorised():
            return
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._send_json(404, {"error": {"message": "not found", "type": "not_found"}})
            return
        if not _well_formed(body):
            # What a real server does with a body it cannot read (the proxy's fuzz tests send
            # such bodies through): a 400, not a dropped connection.
            self._send_json(400, {"error": {"message": "malformed request", "type": "invalid"}})
            return
        rejection = self.fake._rejects(body)
        if rejection:
            status = 400 if "stream_options" in rejection else self.fake.reject_status
            self._send_json(status, {"error": {"message": rejection, "type": "invalid_request"}})
            return
        item = self.fake._next(body)
        if isinstance(item, str):
            item = FakeReply(item, delay=self.fake.token_delay)
        try:
            self._play(item, body)
        except (BrokenPipeError, ConnectionResetError):
            # The client went away; that is its right.  Counted, so tests can see it happen.
            with self.fake._lock:
                self.fake.client_disconnects += 1

    # -- behaviours ---------------------------------------------------------------------------

    def _play(self, item: FakeItem, body: dict[str, Any]) -> None:
        if isinstance(item, FakeError):
            time.sleep(item.delay)
            self._send_json(
                item.status,
                {"error": {"message": item.message, "type": "error", "code": item.status}},
                item.headers,
            )
        elif isinstance(item, FakeRaw):
            time.sleep(item.delay)
            self.send_response(item.status)
            self.send_header("Content-Type", item.content_type)
            self.send_header("Content-Length", str(len(item.body)))
            self.end_headers()
            self.wfile.write(item.body)
        elif isinstance(item, FakeStall):
            if item.after_headers and body.get("stream"):
                self._start_stream()
            time.sleep(item.seconds)
            self.close_connection = True
        elif isinstance(item, FakeCut):
            self._start_stream()
            if item.text_before:
                self._chunk(self._delta(body, item.text_before))
            time.sleep(item.delay)
            # Half a chunk, then the socket closes: the client sees a broken stream.
            self.wfile.write(b'40\r\ndata: {"partial')
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
        elif isinstance(item, FakeReply):
            if body.get("stream"):
                self._stream_reply(item, body)
            else:
                self._whole_reply(item, body)

    def _usage(self, item: FakeReply, body: dict[str, Any]) -> dict[str, Any]:
        if item.usage is not None:
            prompt, completion = item.usage
        else:
            prompt = sum(len(str(m.get("content", ""))) // 4 for m in body.get("messages", []))
            completion = _count(item.text)
        usage: dict[str, Any] = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
        if item.cached_tokens is not None:
            usage["prompt_tokens_details"] = {"cached_tokens": item.cached_tokens}
        return usage

    def _whole_reply(self, item: FakeReply, body: dict[str, Any]) -> None:
        time.sleep(item.first_delay)
        message: dict[str, Any] = {"role": "assistant", "content": item.text}
        if item.tool_calls:
            message["tool_calls"] = item.tool_calls
            message["content"] = item.text or None
        payload = {
            "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "fake-model"),
            "choices": [{"index": 0, "message": message, "finish_reason": item.finish_reason}],
            "usage": self._usage(item, body),
        }
        self._send_json(200, payload)

    def _start_stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()

    def _chunk(self, payload: Any) -> None:
        data = b"data: " + (payload if isinstance(payload, bytes) else json.dumps(payload).encode())
        data += b"\n\n"
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _delta(
        self, body: dict[str, Any], text: str | None, finish: str | None = None, **extra: Any
    ) -> dict[str, Any]:
        delta: dict[str, Any] = {}
        if text is not None:
            delta["content"] = text
        delta.update(extra)
        return {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": body.get("model", "fake-model"),
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }

    def _stream_reply(self, item: FakeReply, body: dict[str, Any]) -> None:
        self._start_stream()
        time.sleep(item.first_delay)
        self._chunk(self._delta(body, None, role="assistant"))
        text = item.text
        if item.chunk_size:
            pieces = [text[i : i + item.chunk_size] for i in range(0, len(text), item.chunk_size)]
        else:
            pieces = [p + " " for p in text.split(" ")]
            if pieces:
                pieces[-1] = pieces[-1][:-1]
        for piece in pieces:
            if item.delay:
                time.sleep(item.delay)
            if piece:
                self._chunk(self._delta(body, piece))
        if item.tool_calls:
            for i, call in enumerate(item.tool_calls):
                self._chunk(self._delta(body, None, tool_calls=[{"index": i, **call}]))
        self._chunk(self._delta(body, None, finish=item.finish_reason))
        wants_usage = (body.get("stream_options") or {}).get("include_usage")
        if wants_usage and item.send_usage:
            final = self._delta(body, None)
            final["choices"] = []
            final["usage"] = self._usage(item, body)
            self._chunk(final)
        self._chunk(b"[DONE]")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()
