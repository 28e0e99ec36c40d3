"""Free-text steps inside a minimal envelope: a lenient parser and a streaming field reader.

    Title: Spell the word out
    s, t, r, a, w, b, e, r, r, y ...
    Next: continue

Only the first and the last line have a fixed shape; the reasoning between them is free
text, which published work finds costs less accuracy than JSON-escaped strings.  The
in-process backend enforces the envelope with this regular expression; servers get the
prompt and the lenient parser.
"""

from __future__ import annotations

import re

from thinkchain.chain.steps.parsing import (
    ParsedStep,
    StepFormatError,
    normalise_next_action,
    read_as_written_first,
)

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
    return read_as_written_first(_parse_text, text or "")


def _parse_text(text: str) -> ParsedStep:
    lines = [ln for ln in text.strip().splitlines()]
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
