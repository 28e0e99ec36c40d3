"""Split one streamed generation into titled steps and an answer, while it streams.

In ``single-pass`` mode the model writes its whole chain in one reply::

    ### Step 1: Restate the question
    ...
    ### Step 2: Count the letters
    ...
    ### Answer
    **3**

The splitter turns the text deltas into step and answer events as they arrive.  Content is
passed on token by token; only the beginning of a line that may still turn out to be a
heading ("###", "**Step", "Ans", ...) is held back until the line shows what it is.
Headings are recognised leniently: markdown levels, bold, "Step 2." or "步骤 2：", "第2步".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

_STEP_HEADING = re.compile(
    r"^\s*(?:#{1,6}\s*)?(?:\*\*|__)?\s*(?:step|步骤|第)\s*(\d{1,3})\s*(?:步)?\s*"
    r"(?:[:：.．)\-—–]\s*)?(.*?)\s*(?:\*\*|__)?\s*[:：]?\s*$",
    re.I,
)
_ANSWER_HEADING = re.compile(
    r"^\s*(?:#{1,6}\s*)?(?:\*\*|__)?\s*(?:final\s+answer|answer|最终答案|答案)\s*(?:\*\*|__)?"
    r"\s*[:：]?\s*(?:\*\*|__)?\s*(.*)$",
    re.I,
)
# A step whose title is only "Answer" (or "Final answer: 42") is the answer, not a step.
_ANSWER_TITLE = re.compile(
    r"^(?:the\s+)?(?:final\s+answer|answer|最终答案|答案)\s*(?:$|[:：]\s*(.*)$)", re.I
)
# A line that starts like this may become a heading; it is held back until it is either a
# heading or longer than _HOLD_LIMIT characters (a few tokens of delay, never more).
_HEADING_START = re.compile(r"^\s*(?:[#*_]|s|a|f|步|第|答|最)", re.I)
_HOLD_LIMIT = 24
_FINAL_ANSWER_PREFIX = re.compile(r"^\s*final\s+(answer)?\s*$", re.I)
# Certainly a step heading once this much is there: hold the line until it ends (its title).
_DEFINITE_STEP = re.compile(r"^\s*(?:#{1,6}\s*)?(?:\*\*|__)?\s*(?:step|步骤|第)\s*\d", re.I)
# "Answer:" (or a bold/markdown variant) starts the answer at once; the rest streams.
_ANSWER_WORDS = r"(?:final\s+answer|answer|最终答案|答案)"
_INLINE_ANSWER = re.compile(
    r"^\s*(?:#{1,6}\s*)?(?:"
    rf"(?:\*\*|__)\s*{_ANSWER_WORDS}\s*(?:[:：]\s*(?:\*\*|__)|(?:\*\*|__)\s*[:：])"
    rf"|{_ANSWER_WORDS}\s*[:：])",
    re.I,
)
# "### Answer" or "**Final answer**" may still be a heading line: hold it until it ends.
_ANSWER_LINE = re.compile(
    r"^\s*(?:#{1,6}\s*|\*\*|__)(?:\*\*|__)?\s*(?:final\s*(?:answer)?|answer|最终答案|答案)"
    r"\s*(?:\*\*|__)?\s*$",
    re.I,
)


@dataclass(frozen=True, slots=True)
class Piece:
    """What the splitter found: a new step (``text`` is its heading line), a title, text of
    the current step or of the answer, or the start of the answer."""

    kind: Literal["step", "title", "content", "answer_start", "answer"]
    text: str = ""
    number: int = 0


class StepSplitter:
    def __init__(self) -> None:
        self._line = ""  # the current, unfinished line
        self._line_is_text = False  # the current line is known not to be a heading
        self._whole_line = ""  # everything of the current line, held back or passed on
        self.in_fence = False  # inside a ``` code block, where nothing is a heading
        self.in_answer = False
        self.steps_seen = 0

    def feed(self, delta: str) -> list[Piece]:
        out: list[Piece] = []
        while delta:
            newline = delta.find("\n")
            if newline < 0:
                self._partial(delta, out)
                break
            self._partial(delta[: newline + 1], out, complete=True)
            delta = delta[newline + 1 :]
        return out

    def finish(self) -> list[Piece]:
        """Flush what is held back at the end of the generation."""
        out: list[Piece] = []
        if self._line:
            self._complete_line(self._line, out)
        self._line = ""
        return out

    def _partial(self, text: str, out: list[Piece], complete: bool = False) -> None:
        self._whole_line += text
        if self.in_answer or self._line_is_text or self.in_fence:
            self._emit_text(text, out)
            if complete:
                self._line_is_text = False
                self._end_line()
            return
        self._line += text
        if complete:
            line, self._line = self._line, ""
            self._complete_line(line, out)
            self._end_line()
            return
        inline = _INLINE_ANSWER.match(self._line)
        if inline:
            rest, self._line = self._line[inline.end() :], ""
            self.in_answer = True
            out.append(Piece("answer_start"))
            self._emit_text(rest, out)
            return
        line = self._line
        if _DEFINITE_STEP.match(line) or _ANSWER_LINE.match(line):
            return  # a heading: wait for the end of the line (the title)
        if _HEADING_START.match(line) and len(line.strip()) < _HOLD_LIMIT:
            return  # may still become a heading
        # It can no longer become a heading: release it and stream the rest of the line.
        self._line = ""
        self._line_is_text = True
        self._emit_text(line, out)

    def _end_line(self) -> None:
        # A line opening or closing a code fence: a "# Step 1" comment in code is no heading.
        if self._whole_line.lstrip().startswith("```"):
            self.in_fence = not self.in_fence
        self._whole_line = ""

    def _complete_line(self, line: str, out: list[Piece]) -> None:
        body = line.rstrip("\n")
        if not self.in_answer:
            step = _STEP_HEADING.match(body)
            answer_step = _ANSWER_TITLE.match(_strip_markup(step.group(2))) if step else None
            if answer_step:
                # "### Step 4: Answer": small models number the answer like a step.
                self._start_answer(_strip_markup(answer_step.group(1) or ""), out)
                return
            if step and (step.group(2) or re.search(r"\d\s*[:：.)]?\s*$", body)):
                self.steps_seen += 1
                # The raw heading line travels with the piece so the chain can be re-sent
                # exactly as the model wrote it.
                out.append(Piece("step", text=line, number=int(step.group(1))))
                title = _strip_markup(step.group(2))
                if title:
                    out.append(Piece("title", title))
                return
            answer = _ANSWER_HEADING.match(body)
            if answer and not _FINAL_ANSWER_PREFIX.match(body) and self._is_answer(body):
                self._start_answer(answer.group(1).strip(), out)
                return
        self._emit_text(line, out)

    def _start_answer(self, rest: str, out: list[Piece]) -> None:
        """The answer begins; ``rest`` is what its heading line already said of it."""
        self.in_answer = True
        out.append(Piece("answer_start"))
        if rest:
            out.append(Piece("answer", rest + "\n"))

    @staticmethod
    def _is_answer(body: str) -> bool:
        # "Answer: 42" and "### Answer" are headings; "Answering this needs..." is prose.
        return bool(re.match(r"^\s*(?:#{1,6}|\*\*|__)", body)) or bool(
            re.match(r"^\s*(?:final\s+answer|answer|最终答案|答案)\s*[:：]", body, re.I)
        )

    def _emit_text(self, text: str, out: list[Piece]) -> None:
        if not text:
            return
        out.append(Piece("answer" if self.in_answer else "content", text))


def _strip_markup(title: str) -> str:
    return title.strip().strip("*_#").strip()
