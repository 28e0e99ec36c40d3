"""The Responses API's objects and stream events for one response, as JSON and SSE bytes.

A stream goes, as OpenAI's does (and as openai-python's ``responses.stream`` helper checks):

    response.created, response.in_progress
    response.output_item.added (reasoning)
      response.reasoning_summary_part.added
      response.reasoning_summary_text.delta ...
      response.reasoning_summary_text.done
      response.reasoning_summary_part.done
    response.output_item.done (reasoning)
    response.output_item.added (message)
      response.content_part.added
      response.output_text.delta ...
      response.output_text.done
      response.content_part.done
    response.output_item.done (message)
    response.completed | response.incomplete    (or: error, then response.failed)

Each event carries a ``sequence_number`` from 0.  Reasoning and answer text arrive as they are
made; a switch from one to the other closes the open item and opens the next, so the rare note
that comes after the answer began (a retried answer) gets an item of its own, in order.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any, Literal

from thinkchain.proxy.errors import ProxyError
from thinkchain.proxy.reasoning import Outcome

Status = Literal["completed", "incomplete"]


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def usage_of(outcome: Outcome) -> dict[str, Any]:
    u = outcome.usage
    return {
        "input_tokens": u.prompt_tokens,
        "input_tokens_details": {"cached_tokens": u.cached_tokens, "cache_write_tokens": 0},
        "output_tokens": u.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": outcome.reasoning_tokens},
        "total_tokens": u.total_tokens,
    }


def incomplete_reason(outcome: Outcome) -> str:
    kind = outcome.error.kind if outcome.error is not None else ""
    return "max_time" if kind == "time_budget" else "max_output_tokens"


def reasoning_item(item_id: str, text: str, status: str = "completed") -> dict[str, Any]:
    summary = [{"type": "summary_text", "text": text}] if text else []
    return {"id": item_id, "type": "reasoning", "summary": summary, "status": status}


def message_item(item_id: str, text: str | None, status: str = "completed") -> dict[str, Any]:
    content = [] if text is None else [_text_part(text)]
    return {
        "id": item_id,
        "type": "message",
        "role": "assistant",
        "status": status,
        "content": content,
    }


def _text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


class ResponseWriter:
    """One response: its object at any moment, and the events of its stream."""

    def __init__(self, model: str, echo: dict[str, Any]) -> None:
        self.id = new_id("resp")
        self.model = model
        self.created_at = int(time.time())
        self.echo = echo  # request parameters a response repeats (instructions, metadata...)
        self.output: list[dict[str, Any]] = []  # finished items
        self._sequence = 0
        self._open: dict[str, Any] | None = None  # the item being written, and its text
        self._text = ""

    # -- the object ---------------------------------------------------------------------------

    def response(
        self,
        status: str,
        *,
        outcome: Outcome | None = None,
        error: ProxyError | None = None,
        output: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "model": self.model,
            "output": self.output if output is None else output,
            "usage": None,
            "error": None,
            "incomplete_details": None,
            **self.echo,
        }
        if status in ("completed", "incomplete", "failed"):
            body["completed_at"] = int(time.time())
        if outcome is not None:
            body["usage"] = usage_of(outcome)
            body["thinkchain"] = outcome.trace
            if status == "incomplete":
                body["incomplete_details"] = {"reason": incomplete_reason(outcome)}
        if error is not None:
            # The Response object's error codes are few; "server_error" is the one that fits
            # a failed upstream or model.  The error event before it has the precise code.
            body["error"] = {"code": "server_error", "message": error.message}
        return body

    # -- the stream ---------------------------------------------------------------------------

    def _event(self, kind: str, **fields: Any) -> bytes:
        payload = {"type": kind, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        data = json.dumps(payload, ensure_ascii=False)
        return f"event: {kind}\ndata: {data}\n\n".encode()

    def start(self) -> list[bytes]:
        snapshot = self.response("in_progress")
        return [
            self._event("response.created", response=snapshot),
            self._event("response.in_progress", response=snapshot),
        ]

    def reasoning(self, text: str) -> list[bytes]:
        """Events for a piece of the steps (opening a reasoning item when none is open)."""
        if not text:
            return []
        out = [] if self._is_open("reasoning") else self._switch("reasoning")
        assert self._open is not None
        self._text += text
        out.append(
            self._event(
                "response.reasoning_summary_text.delta",
                item_id=self._open["id"],
                output_index=len(self.output),
                summary_index=0,
                delta=text,
            )
        )
        return out

    def content(self, text: str) -> list[bytes]:
        """Events for a piece of the answer (opening a message item when none is open)."""
        if not text:
            return []
        out = [] if self._is_open("message") else self._switch("message")
        assert self._open is not None
        self._text += text
        out.append(
            self._event(
                "response.output_text.delta",
                item_id=self._open["id"],
                output_index=len(self.output),
                content_index=0,
                delta=text,
                logprobs=[],
            )
        )
        return out

    def finish(self, outcome: Outcome) -> list[bytes]:
        status: Status = "incomplete" if outcome.over_budget else "completed"
        out = self._close(status)
        body = self.response(status, outcome=outcome)
        out.append(self._event(f"response.{status}", response=body))
        return out

    def fail(self, error: ProxyError) -> list[bytes]:
        """An error after output began: the error event, then the failed response."""
        out = [self._event("error", code=error.code, message=error.message, param=error.param)]
        if self._open is not None:  # what was written stays in the failed response's output
            item = self._item(self._open, "incomplete")
            self._open = None
            self.output.append(item)
        out.append(self._event("response.failed", response=self.response("failed", error=error)))
        return out

    def _is_open(self, kind: str) -> bool:
        return self._open is not None and self._open["type"] == kind

    def _switch(self, kind: str) -> list[bytes]:
        out = self._close("completed")
        index = len(self.output)
        if kind == "reasoning":
            self._open = reasoning_item(new_id("rs"), "", "in_progress")
            out.append(
                self._event("response.output_item.added", output_index=index, item=self._open)
            )
            out.append(
                self._event(
                    "response.reasoning_summary_part.added",
                    item_id=self._open["id"],
                    output_index=index,
                    summary_index=0,
                    part={"type": "summary_text", "text": ""},
                )
            )
        else:
            self._open = message_item(new_id("msg"), None, "in_progress")
            out.append(
                self._event("response.output_item.added", output_index=index, item=self._open)
            )
            out.append(
                self._event(
                    "response.content_part.added",
                    item_id=self._open["id"],
                    output_index=index,
                    content_index=0,
                    part=_text_part(""),
                )
            )
        self._text = ""
        return out

    def _item(self, opened: dict[str, Any], status: str) -> dict[str, Any]:
        if opened["type"] == "reasoning":
            return reasoning_item(opened["id"], self._text, status)
        return message_item(opened["id"], self._text, status)

    def _close(self, status: Status) -> list[bytes]:
        opened = self._open
        if opened is None:
            return []
        index, text, item_id = len(self.output), self._text, opened["id"]
        if opened["type"] == "reasoning":
            part = {"type": "summary_text", "text": text}
            common = {"item_id": item_id, "output_index": index, "summary_index": 0}
            out = [
                self._event("response.reasoning_summary_text.done", **common, text=text),
                self._event("response.reasoning_summary_part.done", **common, part=part),
            ]
        else:
            common = {"item_id": item_id, "output_index": index, "content_index": 0}
            out = [
                self._event("response.output_text.done", **common, text=text, logprobs=[]),
                self._event("response.content_part.done", **common, part=_text_part(text)),
            ]
        item = self._item(opened, status)
        out.append(self._event("response.output_item.done", output_index=index, item=item))
        self.output.append(item)
        self._open = None
        self._text = ""
        return out
