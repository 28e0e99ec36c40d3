"""A Responses request read as the chat request the chain already plans from.

``instructions`` become a system message, a kept conversation (``previous_response_id``) comes
next, then ``input``: a string is the user's question; items are messages whose text parts
(``input_text``, ``output_text``) are read, tool outputs become context as in chat, and
reasoning items are left out (earlier steps are not context, as in chat).  Anything else is a
400 naming the item.  The plan is then made by the same code as for chat completions; errors
it raises about ``messages.N`` are renamed to the Responses parameter they came from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from thinkchain.proxy.errors import ProxyError, bad_request, describe_validation
from thinkchain.proxy.response_schemas import ResponsesRequest
from thinkchain.proxy.schemas import ChatCompletionRequest

_TEXT_PARTS = ("input_text", "output_text", "text")
_ROLES = ("system", "developer", "user", "assistant")


@dataclass(frozen=True)
class ChatView:
    """The request as chat messages, and where each message came from."""

    request: ChatCompletionRequest
    turn: list[dict[str, str]]  # this request's own messages (no instructions), to keep
    sources: list[str]  # the Responses parameter each chat message came from


def _part_text(part: Any, where: str) -> str:
    if isinstance(part, str):
        return part
    if not isinstance(part, dict):
        raise bad_request("a content part must be an object", param=where)
    kind = part.get("type")
    if kind in _TEXT_PARTS:
        text = part.get("text")
        if not isinstance(text, str):
            raise bad_request(f"a {kind} part needs its text as a string", param=f"{where}.text")
        return text
    if kind == "refusal":
        return str(part.get("refusal") or "")
    raise bad_request(
        f"reasoning variants read text only; a {kind!r} part cannot be used",
        param=where,
        code="unsupported_content",
    )


def _content_text(content: Any, where: str) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    if not isinstance(content, list):
        raise bad_request("content must be text or a list of parts", param=where)
    return "\n".join(_part_text(part, f"{where}.{i}") for i, part in enumerate(content))


def _item_message(item: dict[str, Any], where: str) -> dict[str, str] | None:
    """One input item as a chat message; None for items that are not context."""
    kind = item.get("type", "message")
    if kind == "message":
        role = item.get("role")
        if role not in _ROLES:
            raise bad_request(
                f"a message's role must be one of {', '.join(_ROLES)}", param=f"{where}.role"
            )
        return {"role": role, "content": _content_text(item.get("content"), f"{where}.content")}
    if kind == "reasoning":
        return None  # earlier steps are not context (chat completions drop them too)
    if kind == "function_call":
        return None  # reasoning variants call no tools; the call's output below is the context
    if kind in ("function_call_output", "custom_tool_call_output"):
        output = item.get("output")
        text = output if isinstance(output, str) else _content_text(output, f"{where}.output")
        return {"role": "tool", "content": text}
    raise bad_request(
        f"input items of type {kind!r} are not supported by reasoning variants",
        param=f"{where}.type",
        code="unsupported_input",
    )


def read_input(body: ResponsesRequest) -> list[tuple[dict[str, str], str]]:
    """The request's input as chat messages (without the instructions), each with its source."""
    if isinstance(body.input, str):
        return [({"role": "user", "content": body.input}, "input")]
    if not body.input:
        raise bad_request("input must hold at least one item", param="input")
    read: list[tuple[dict[str, str], str]] = []
    for i, item in enumerate(body.input):
        message = _item_message(item, f"input.{i}")
        if message is not None:
            read.append((message, f"input.{i}"))
    if not read:
        raise bad_request("input holds no message", param="input")
    return read


def chat_view(body: ResponsesRequest, history: list[dict[str, str]]) -> ChatView:
    """The chat request for ``body`` after the kept conversation ``history``."""
    read = read_input(body)
    turn = [message for message, _ in read]
    messages: list[dict[str, str]] = []
    sources: list[str] = []
    if body.instructions:
        messages.append({"role": "system", "content": body.instructions})
        sources.append("instructions")
    messages += history
    sources += ["previous_response_id"] * len(history)
    messages += turn
    sources += [source for _, source in read]
    data: dict[str, Any] = {
        "model": body.model,
        "messages": messages,
        "stream": body.stream,
        "temperature": body.temperature,
        # Like OpenAI's reasoning models: max_output_tokens counts the reasoning too.
        "max_completion_tokens": body.max_output_tokens,
    }
    if body.thinkchain is not None:
        data["thinkchain"] = body.thinkchain.model_dump(exclude_none=True)
    try:
        request = ChatCompletionRequest.model_validate(data)
    except ValidationError as err:
        message, _ = describe_validation(err)
        raise bad_request(message, param="input") from None
    return ChatView(request, turn, sources)


_MESSAGE_PARAM = re.compile(r"^messages\.(\d+)(.*)$")


def renamed(err: ProxyError, sources: list[str]) -> ProxyError:
    """``err`` with a ``messages.N...`` parameter named as the Responses parameter it came from."""
    match = _MESSAGE_PARAM.match(err.param or "")
    if match is not None:
        index, rest = int(match.group(1)), match.group(2)
        source = sources[index] if index < len(sources) else "input"
        err.param = source + (rest if source.startswith("input.") else "")
    elif err.param == "messages":
        err.param = "input"
    return err
