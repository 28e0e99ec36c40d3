"""What the code printed: its beginning and its end kept, the middle cut with a marker.

Memory stays bounded however much the code prints: only the first and the last
``keep`` characters are held.  Control characters are escaped, so the output cannot drive
a terminal (move the cursor, hide text, set the clipboard) when it is printed, and so are
the invisible and direction-changing characters of Unicode, so it cannot show text other
than what it holds (reversed by U+202E, hidden in U+200B or tag characters) in the page,
the terminal or the model's feedback.
"""

from __future__ import annotations

import codecs
import re

HEAD_SHARE = 0.6  # of a cut output: the beginning, where the code says what it does
_CONTROL = re.compile(
    "["
    "\x00-\x08\x0b-\x1f\x7f-\x9f"  # C0 and C1 controls (newline and tab stay)
    # Unicode's format characters (category Cf: bidi controls and isolates, zero-width
    # characters, the byte-order mark, interlinear annotation, tags) and the line and
    # paragraph separators; tests/sandbox check this list against unicodedata.
    "\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e"
    "\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb"
    "\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a"
    "\U000e0001\U000e0020-\U000e007f"
    "\U000e0100-\U000e01ef"  # variation selectors 17-256: invisible, can carry hidden text
    "\ud800-\udfff"  # lone surrogates (from JSON escapes): no UTF-8 encoder accepts them
    "]"
)


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    if code < 0xA0:
        return repr(char)[1:-1]  # \x1b, \r, \t as Python writes them
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def sanitize(text: str) -> str:
    """Printable text: newlines and tabs kept, other control, invisible and bidi characters
    written as escapes (``\\x1b``, ``\\u202e``)."""
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
