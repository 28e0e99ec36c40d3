"""What the fake OpenAI server plays: the script's items, and the requests it records.

A script is a sequence of these items, one per chat-completion request: a reply (streamed or
whole), an HTTP error, a raw body, a stream cut in the middle, a stall; a plain string is a
reply with that text.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
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


def count_words(text: str) -> int:
    """The completion tokens of a reply, counted when the script gives none."""
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
