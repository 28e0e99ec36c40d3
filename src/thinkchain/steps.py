"""The step format: its JSON schema, a lenient parser, and a streaming field reader.

Servers that enforce the schema give us clean JSON; many do not, and small models wrap the
object in code fences, add text around it, leave trailing commas, put raw newlines inside
strings, or stop in the middle at the token limit.  ``parse_step`` accepts what can be read
without guessing and explains the rest in a sentence that is sent back to the model.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jiter

from .events import NextAction

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

_FENCE = re.compile(r"```[a-zA-Z0-9_-]*\s*\n?")
_TRAILING_COMMA = re.compile(r",(\s*[}\]])")

_FINAL_WORDS = {"final_answer", "final", "answer", "finalanswer", "done", "finish", "finished"}
_CONTINUE_WORDS = {"continue", "next", "next_step", "continue_reasoning", "keep_going"}


class StepFormatError(ValueError):
    """The text is not a valid step.  ``str(err)`` is written for the model to read."""

    def __init__(self, message: str, *, truncated: bool = False) -> None:
        super().__init__(message)
        self.truncated = truncated


@dataclass(frozen=True, slots=True)
class ParsedStep:
    title: str
    content: str
    next_action: NextAction
    # The JSON text of the step as it should appear in the conversation afterwards.
    canonical: str


def _strip_fences(text: str) -> str:
    return _FENCE.sub("", text).replace("```", "")


def _find_object(text: str) -> tuple[str, bool]:
    """The first balanced ``{...}`` in ``text``, and whether it was closed."""
    start = text.find("{")
    if start < 0:
        raise StepFormatError("it is not JSON: there is no '{' in it")
    depth = 0
    in_string = False
    escaped = False
    for i in range(start, len(text)):
        ch = text[i]
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
            continue
        if ch == '"':
            in_string = True
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[start : i + 1], True
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


def normalise_next_action(value: Any) -> NextAction:
    if not isinstance(value, str):
        raise StepFormatError(
            f'"next_action" must be the string "continue" or "final_answer", not {value!r}'
        )
    word = re.sub(r"[\s\-.]+", "_", value.strip().lower()).strip("_")
    if word in _FINAL_WORDS:
        return "final_answer"
    if word in _CONTINUE_WORDS:
        return "continue"
    raise StepFormatError(f'"next_action" must be "continue" or "final_answer", not {value!r}')


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
    candidate, closed = _find_object(_strip_fences(text))
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
    out: list[str] = []
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
            elif ch == "\n":
                out.append("\\n")
                continue
            elif ch == "\t":
                out.append("\\t")
                continue
        elif ch == '"':
            in_string = True
        out.append(ch)
    return "".join(out)


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


# --------------------------------------------------------------------------------------------
# Free-text steps inside a minimal envelope ("iterative-text" mode)
# --------------------------------------------------------------------------------------------
#
#     Title: Spell the word out
#     s, t, r, a, w, b, e, r, r, y ...
#     Next: continue
#
# Only the first and the last line have a fixed shape; the reasoning between them is free
# text, which published work finds costs less accuracy than JSON-escaped strings.  The
# in-process backend enforces the envelope with this regular expression; servers get the
# prompt and the lenient parser.

TEXT_STEP_REGEX = r"Title: [^\n]{1,120}\n[\s\S]+\nNext: (continue|final_answer)"

_TITLE_LINE = re.compile(
    r"^\s*(?:#{1,6}\s*)?(?:\*\*|__)?\s*(?:title|标题)\s*(?:\*\*|__)?\s*[:：]\s*(?:\*\*|__)?"
    r"\s*(.*?)\s*(?:\*\*|__)?\s*$",
    re.I,
)
_HEADING_LINE = re.compile(r"^\s*#{1,6}\s+(.+?)\s*$")
_NEXT_LINE = re.compile(
    r"^\s*(?:\*\*|__)?\s*(?:next(?:\s+action)?|next_action|下一步)\s*(?:\*\*|__)?\s*[:：]\s*"
    r"(?:\*\*|__|`)?\s*([A-Za-z_\- ]+?)\s*(?:\*\*|__|`)?\s*\.?\s*$",
    re.I,
)


_FINISHED_NEXT = re.compile(
    r"^\s*(?:\*\*)?\s*next\s*(?:\*\*)?\s*:\s*(?:\*\*)?\s*"
    r"(?:continue|final_answer)\b",
    re.I,
)


def parse_text_step(text: str) -> ParsedStep:
    """Read a free-text step (title line, reasoning, ``Next:`` line), leniently."""
    lines = [ln for ln in _strip_fences(text or "").strip().splitlines()]
    if not lines:
        raise StepFormatError("the reply is empty")
    first = _TITLE_LINE.match(lines[0]) or _HEADING_LINE.match(lines[0])
    if not first or not first.group(1).strip():
        raise StepFormatError('the first line must be "Title: <a few words>"')
    title = first.group(1).strip().strip("*_").strip()
    body = lines[1:]
    # The first "Next:" line closes the step; anything a model writes after it is not read.
    closing = next(
        ((i, found) for i, line in enumerate(body) if (found := _NEXT_LINE.match(line))), None
    )
    if closing is None:
        raise StepFormatError(
            'the last line must be "Next: continue" or "Next: final_answer"', truncated=True
        )
    at, next_line = closing
    action = normalise_next_action(next_line.group(1))
    content = "\n".join(body[:at]).strip()
    if not content:
        raise StepFormatError("the step has a title but no reasoning")
    canonical = f"Title: {title}\n{content}\nNext: {action}"
    return ParsedStep(title, content, action, canonical)


def repair_text_step(text: str) -> ParsedStep | None:
    """A text step cut at the token limit: keep its title and the reasoning so far."""
    try:
        return parse_text_step(text.rstrip() + "\nNext: continue")
    except StepFormatError:
        return None


class TextFieldStream:
    """Title and content deltas of a free-text step while it streams.

    The title is the first line (sent once complete); the content streams as it comes, except
    a line that may turn out to be the closing ``Next:`` line, which is held until it ends.
    """

    __slots__ = ("_done_title", "_line", "_title", "complete")

    _MAYBE_NEXT = re.compile(r"^\s*(?:\*\*|__)?\s*(?:n|ne|nex|next|下|下一|下一步)", re.I)

    def __init__(self) -> None:
        self._title = ""
        self._done_title = False
        self._line = ""
        self.complete = False  # the closing "Next:" line has been written

    def feed(self, delta: str) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        if self.complete:
            return out
        self._line += delta
        while "\n" in self._line:
            line, self._line = self._line.split("\n", 1)
            self._complete(line + "\n", out)
        if self._done_title and _FINISHED_NEXT.match(self._line):
            self.complete = True  # "Next: continue" written, the newline not yet: done anyway
        elif self._done_title and self._line and not self._MAYBE_NEXT.match(self._line):
            out.append(("content", self._line))
            self._line = ""
        return out

    def _complete(self, line: str, out: list[tuple[str, str]]) -> None:
        if not self._done_title:
            if not line.strip():
                return
            match = _TITLE_LINE.match(line) or _HEADING_LINE.match(line)
            self._title = (match.group(1) if match else line).strip().strip("*_").strip()
            self._done_title = True
            out.append(("title", self._title))
            return
        if _NEXT_LINE.match(line.strip()):
            self.complete = True
            self._line = ""
            return
        out.append(("content", line))

    @property
    def title(self) -> str:
        return self._title


# --------------------------------------------------------------------------------------------
# The step formats a chain can ask for
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StepFormat:
    """Everything that differs between JSON steps and free-text steps."""

    name: str
    system_prompt: str  # prompt name (prompts/<lang>/<name>.md)
    invalid_prompt: str
    schema: dict[str, Any] | None
    extra: dict[str, Any]
    parse: Callable[[str], ParsedStep]
    repair: Callable[[str], ParsedStep | None]
    fields: Callable[[], StepFieldStream | TextFieldStream]
    keep_raw: Callable[[str, ParsedStep], bool]  # may the model's own text stay in the chat?


def _json_raw_is_clean(raw: str, parsed: ParsedStep) -> bool:
    stripped = raw.strip()
    if not (stripped.startswith("{") and stripped.endswith("}")):
        return False
    try:
        return bool(json.loads(stripped) == json.loads(parsed.canonical))
    except ValueError:
        return False


def _text_raw_is_clean(raw: str, parsed: ParsedStep) -> bool:
    return raw.strip() == parsed.canonical


JSON_STEPS = StepFormat(
    name="json",
    system_prompt="step_system",
    invalid_prompt="invalid_step",
    schema=STEP_SCHEMA,
    extra={},
    parse=parse_step,
    repair=repair_truncated,
    fields=StepFieldStream,
    keep_raw=_json_raw_is_clean,
)

TEXT_STEPS = StepFormat(
    name="text",
    system_prompt="text_step_system",
    invalid_prompt="invalid_text_step",
    schema=None,
    extra={"regex": TEXT_STEP_REGEX},
    parse=parse_text_step,
    repair=repair_text_step,
    fields=TextFieldStream,
    keep_raw=_text_raw_is_clean,
)
