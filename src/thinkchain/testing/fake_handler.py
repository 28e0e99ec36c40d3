"""The fake OpenAI server's HTTP side: routes requests and plays the script's items on the
socket, real HTTP/1.1 with chunked server-sent events, misbehaviour included."""

from __future__ import annotations

import json
import socket
import time
import uuid
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any

from thinkchain.testing.fake_script import (
    FakeCut,
    FakeError,
    FakeItem,
    FakeRaw,
    FakeReply,
    FakeStall,
    RecordedRequest,
    count_words,
)

if TYPE_CHECKING:
    from thinkchain.testing.fake_openai import FakeOpenAIServer


def well_formed(body: Any) -> bool:
    """The shape the script and the default responder read: messages of objects, and so on."""
    if not isinstance(body, dict):
        return False
    messages = body.get("messages", [])
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        return False
    return all(
        isinstance(body.get(key) or {}, dict) for key in ("response_format", "stream_options")
    )


class FakeHandler(BaseHTTPRequestHandler):
    """One request to a FakeOpenAIServer: ``fake`` is that server, bound by its ``start``."""

    fake: FakeOpenAIServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _record(self, body: Any) -> None:
        with self.fake.lock:
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
        if self.fake.responses and self.path.rstrip("/").endswith("/responses"):
            self._responses(body)
            return
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._send_json(404, {"error": {"message": "not found", "type": "not_found"}})
            return
        if not well_formed(body):
            # What a real server does with a body it cannot read (the proxy's fuzz tests send
            # such bodies through): a 400, not a dropped connection.
            self._send_json(400, {"error": {"message": "malformed request", "type": "invalid"}})
            return
        rejection = self.fake.rejection(body)
        if rejection:
            status = 400 if "stream_options" in rejection else self.fake.reject_status
            self._send_json(status, {"error": {"message": rejection, "type": "invalid_request"}})
            return
        item = self.fake.next_item(body)
        if isinstance(item, str):
            item = FakeReply(item, delay=self.fake.token_delay)
        try:
            self._play(item, body)
        except (BrokenPipeError, ConnectionResetError):
            # The client went away; that is its right.  Counted, so tests can see it happen.
            with self.fake.lock:
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
            completion = count_words(item.text)
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

    # -- the Responses API --------------------------------------------------------------------

    def _responses(self, body: Any) -> None:
        """A canned Responses answer; the events of a stream in their documented order."""
        model = body.get("model", "fake-model") if isinstance(body, dict) else "fake-model"
        text = "The answer is 42."
        message = {
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": text, "annotations": []}],
        }
        usage = {
            "input_tokens": 5,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": 5,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 10,
        }
        response: dict[str, Any] = {
            "id": "resp_fake",
            "object": "response",
            "created_at": int(time.time()),
            "status": "completed",
            "model": model,
            "output": [message],
            "usage": usage,
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
        }
        if not (isinstance(body, dict) and body.get("stream")):
            self._send_json(200, response)
            return
        started = {**response, "status": "in_progress", "output": [], "usage": None}
        opened = {**message, "status": "in_progress", "content": []}
        part = {"type": "output_text", "text": "", "annotations": []}
        at = {"item_id": "msg_fake", "output_index": 0, "content_index": 0}
        events: list[dict[str, Any]] = [
            {"type": "response.created", "response": started},
            {"type": "response.in_progress", "response": started},
            {"type": "response.output_item.added", "output_index": 0, "item": opened},
            {"type": "response.content_part.added", **at, "part": part},
            {"type": "response.output_text.delta", **at, "delta": text, "logprobs": []},
            {"type": "response.output_text.done", **at, "text": text, "logprobs": []},
            {"type": "response.content_part.done", **at, "part": {**part, "text": text}},
            {"type": "response.output_item.done", "output_index": 0, "item": message},
            {"type": "response.completed", "response": response},
        ]
        self._start_stream()
        for number, event in enumerate(events):
            payload = json.dumps({**event, "sequence_number": number})
            raw = f"event: {event['type']}\ndata: {payload}\n\n".encode()
            self.wfile.write(f"{len(raw):x}\r\n".encode() + raw + b"\r\n")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()
