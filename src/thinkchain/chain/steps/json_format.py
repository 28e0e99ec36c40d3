"""JSON steps: the schema, a lenient parser, and a streaming field reader.

Servers that enforce the schema give us clean JSON; many do not, and small models wrap the
object in code fences, add text around it, leave trailing commas, put raw newlines inside
strings, or stop in the middle at the token limit.  ``parse_step`` accepts what can be read
without guessing and explains the rest in a sentence that is sent back to the model.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import jiter

from thinkchain.chain.steps.parsing import (
    ParsedStep,
    StepFormatError,
    normalise_next_action,
    read_as_written_first,
)

STEP_KEYS = ("title", "content", "next_action")

# Sent to servers that enforce schemas.  Length limits keep a grammar-constrained model from
# writing an empty title/content or a run-on title; emptiness is checked after parsing too,
# for servers that enforce nothing.
STEP_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "title": {"type": "string", "minLength": 1, "maxLength": 200},
        "content": {"type": "string", "minLength": 1},
        "next_action": {"type": "string", "enum": ["continue", "final_answer"]},
    },
    "required": list(STEP_KEYS),
    "additionalProperties": False,
}

_TRAILING_COMMA = re.compile(r",(\s*[}\]])")


def _string_states(text: str) -> Iterator[tuple[int, str, str]]:
    """Each character of JSON text with where it stands: "outside" every string, inside a
    "string", or "escaped" by the backslash just before it."""
    in_string = escaped = False
    for i, ch in enumerate(text):
        if not in_string:
            yield i, ch, "outside"
            in_string = ch == '"'
        elif escaped:
            yield i, ch, "escaped"
            escaped = False
        else:
            yield i, ch, "string"
            if ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False


def _find_object(text: str) -> tuple[str, bool]:
    """The first balanced ``{...}`` in ``text``, and whether it was closed."""
    start = text.find("{")
    if start < 0:
        raise StepFormatError("it is not JSON: there is no '{' in it")
    depth = 0
    for i, ch, where in _string_states(text[start:]):
        if where != "outside":
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[start : start + i + 1], True
    return text[start:], False


def _load_object(candidate: str) -> Any:
    try:
        # strict=False lets raw newlines and tabs through inside strings.
        return json.loads(candidate, strict=False)
    except json.JSONDecodeError:
        pass
    try:
        return json.loads(_TRAILING_COMMA.sub(r"\1", candidate), strict=False)
    except json.JSONDecodeError as err:
        raise StepFormatError(f"it is not valid JSON ({err.msg} at character {err.pos})") from err


def _text_field(data: dict[str, Any], key: str) -> str:
    if key not in data:
        raise StepFormatError(f'the key "{key}" is missing')
    value = data[key]
    if isinstance(value, bool) or value is None:
        raise StepFormatError(f'"{key}" must be a string, not {json.dumps(value)}')
    if isinstance(value, (int, float)):
        value = str(value)
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        value = "\n".join(value)
    elif not isinstance(value, str):
        raise StepFormatError(f'"{key}" must be a string, not {type(value).__name__}')
    value = value.strip()
    if not value:
        raise StepFormatError(f'"{key}" is empty')
    return value


def step_from_object(data: Any) -> ParsedStep:
    if not isinstance(data, dict):
        raise StepFormatError(f"it must be a JSON object, not {type(data).__name__}")
    # Keys are matched without regard to case or surrounding spaces; extra keys are ignored.
    norm = {str(k).strip().lower(): v for k, v in data.items()}
    title = _text_field(norm, "title")
    content = _text_field(norm, "content")
    if "next_action" not in norm:
        raise StepFormatError('the key "next_action" is missing')
    action = normalise_next_action(norm["next_action"])
    canonical = json.dumps(
        {"title": title, "content": content, "next_action": action}, ensure_ascii=False
    )
    return ParsedStep(title, content, action, canonical)


def parse_step(text: str) -> ParsedStep:
    """Read one step from model output, leniently; raise StepFormatError if it is not one."""
    if not text or not text.strip():
        raise StepFormatError("the reply is empty")
    return read_as_written_first(_read_object, text)


def _read_object(text: str) -> ParsedStep:
    candidate, closed = _find_object(text)
    if not closed:
        raise StepFormatError(
            "the JSON object is not closed: the reply was cut off; keep the step shorter",
            truncated=True,
        )
    return step_from_object(_load_object(candidate))


def repair_truncated(text: str) -> ParsedStep | None:
    """Best effort for a step cut at the token limit: keep its title and the content so far."""
    start = text.find("{")
    if start < 0:
        return None
    try:
        data = jiter.from_json(text[start:].encode(), partial_mode="trailing-strings")
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    data = dict(data)
    data.setdefault("next_action", "continue")
    try:
        return step_from_object(data)
    except StepFormatError:
        return None


def _escape_controls_in_strings(text: str) -> str:
    """Escape raw newlines/tabs inside JSON strings so a partial parser can read them."""
    escapes = {"\n": "\\n", "\t": "\\t"}
    return "".join(
        escapes.get(ch, ch) if where == "string" else ch for _, ch, where in _string_states(text)
    )


def _written_after(text: str, end: int) -> bool:
    """Whether the model wrote anything after ``end`` besides whitespace and a closing fence."""
    return bool(text[end:].strip().strip("`").strip())


class StepFieldStream:
    """Turns the raw text of a JSON step, as it streams, into title and content deltas.

    The buffer is re-read from its first '{' with a partial JSON parser on every delta; at a
    few thousand characters a step that costs microseconds, far below one token's decode time.
    """

    __slots__ = ("_buffer", "_closed_at", "_emitted", "_start", "complete")

    _DECODER = json.JSONDecoder(strict=False)

    def __init__(self) -> None:
        self._buffer: list[str] = []
        self._emitted = {"title": "", "content": ""}
        self._closed_at: int | None = None  # where the object ended in the text
        self._start = -1  # where the object's '{' is, once seen
        # The model wrote on after the closed object (servers that enforce no schema): the
        # step is complete and the rest can be cut.  A reply that simply ends after the object
        # is left alone, so a server still sends its usage.
        self.complete = False

    def feed(self, delta: str) -> list[tuple[str, str]]:
        self._buffer.append(delta)
        text = "".join(self._buffer)
        self._buffer = [text]
        if self._start < 0:
            self._start = text.find("{")
            if self._start < 0:
                return []
        start = self._start
        if self._closed_at is not None:  # closed by an earlier piece: only watch what follows
            self.complete = _written_after(text, self._closed_at)
            return []
        if "}" in delta:
            try:
                _, end = self._DECODER.raw_decode(text[start:])
                self._closed_at = start + end
                self.complete = _written_after(text, self._closed_at)
                text = text[: self._closed_at]
            except ValueError:
                pass
        raw = text[start:].encode()
        try:
            data = jiter.from_json(raw, partial_mode="trailing-strings")
        except ValueError:
            try:
                data = jiter.from_json(
                    _escape_controls_in_strings(text[start:]).encode(),
                    partial_mode="trailing-strings",
                )
            except ValueError:
                return []
        if not isinstance(data, dict):
            return []
        out: list[tuple[str, str]] = []
        for key in ("title", "content"):
            value = data.get(key)
            if not isinstance(value, str):
                continue
            seen = self._emitted[key]
            if value.startswith(seen) and len(value) > len(seen):
                out.append((key, value[len(seen) :]))
                self._emitted[key] = value
        return out

    @property
    def title(self) -> str:
        return self._emitted["title"]

    @property
    def content(self) -> str:
        return self._emitted["content"]
