"""What the code printed: its beginning and its end kept, the middle cut with a marker.

Memory stays bounded however much the code prints: only the first and the last
``keep`` characters are held.  Control characters are escaped, so the output cannot drive
a terminal (move the cursor, hide text, set the clipboard) when it is printed.
"""

from __future__ import annotations

import codecs
import re

HEAD_SHARE = 0.6  # of a cut output: the beginning, where the code says what it does
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _escape(match: re.Match[str]) -> str:
    return repr(match.group())[1:-1]


def sanitize(text: str) -> str:
    """Printable text: newlines and tabs kept, other control characters written as escapes."""
    return _CONTROL.sub(_escape, text.replace("\r\n", "\n"))


def marker(cut: int) -> str:
    return f"\n[… {cut:,} characters cut …]\n"


class OutputCapture:
    """Collects the code's output as it arrives, keeping a bounded head and tail."""

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self.bytes = 0
        self.chars = 0
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._head = ""
        self._tail = ""
        self._carry = ""  # a trailing \r, held until we know whether \n follows

    def feed(self, data: bytes, final: bool = False) -> None:
        self.bytes += len(data)
        text = self._carry + self._decoder.decode(data, final)
        self._carry = ""
        if text.endswith("\r") and not final:
            text, self._carry = text[:-1], "\r"
        text = sanitize(text)
        self.chars += len(text)
        room = self.keep - len(self._head)
        if room > 0:
            self._head += text[:room]
            text = text[room:]
        if text:
            self._tail += text
            if len(self._tail) > 2 * self.keep:
                self._tail = self._tail[-self.keep :]

    def result(self) -> tuple[str, bool]:
        """The output, at most ``keep`` characters, and whether it was cut."""
        self.feed(b"", final=True)
        whole = self._head + self._tail
        if self.chars <= self.keep:
            return whole, False
        head = int(self.keep * HEAD_SHARE)
        tail = max(0, self.keep - head - len(marker(self.chars)))
        end = whole[-tail:] if tail else ""
        return whole[:head] + marker(self.chars - head - tail) + end, True
