"""Model text made safe to hand to Streamlit's Markdown renderer.

The page never lets HTML through: model text goes to ``st.markdown`` without
``unsafe_allow_html``, and on top of that every ``<`` and ``&`` outside code is written as an
entity here, so a step that contains ``<script>`` or ``<img onerror=...>`` shows those
characters as text whatever the renderer would do with a tag.  Code spans and fenced blocks are
left alone (Markdown shows them literally anyway, and an entity there would show as ``&lt;``).
Two more things keep model text looking as written: ``$`` is escaped so amounts of money do not
turn into LaTeX, and single line breaks are kept (Markdown would join the lines).
"""

from __future__ import annotations

import re

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_BACKTICKS = re.compile(r"`+")


def safe_markdown(text: str) -> str:
    """``text`` as Markdown that renders no HTML and keeps its line breaks."""
    pieces = _pieces(text)
    return "\n".join("\n".join(lines if fenced else _prose(lines)) for lines, fenced, _ in pieces)


def _pieces(text: str) -> list[tuple[list[str], bool, bool]]:
    """The lines of ``text`` in runs of prose and fenced blocks (fence lines included), each
    with whether it is a block and whether that block is closed; a block still open at the end
    (a step being written) runs to the end."""
    pieces: list[tuple[list[str], bool, bool]] = []
    current: list[str] = []
    fence: str | None = None
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if fence is None:
            opened = _FENCE.match(line)
            if opened:
                if current:
                    pieces.append((current, False, False))
                current, fence = [line], opened.group(1)
            else:
                current.append(line)
        else:
            current.append(line)
            closing = line.strip()
            if closing.startswith(fence) and set(closing) == {fence[0]}:
                pieces.append((current, True, True))
                current, fence = [], None
    if current or not pieces:
        pieces.append((current, fence is not None, False))
    return pieces


def safe_label(text: str) -> str:
    """Model text for a one-line label (an expander's title): escaped, on one line."""
    flat = " ".join(text.split())
    return _escape_outside_code(flat)


def _prose(lines: list[str]) -> list[str]:
    if not lines:
        return []
    escaped = _escape_outside_code("\n".join(lines)).split("\n")
    # A line followed by another non-empty line ends in a hard break ("  "), as it was written.
    return [
        line + "  " if line.strip() and i + 1 < len(escaped) and escaped[i + 1].strip() else line
        for i, line in enumerate(escaped)
    ]


def _escape_outside_code(text: str) -> str:
    """Escape ``&``, ``<`` and ``$`` everywhere except inside `code spans`."""
    out: list[str] = []
    pos = 0
    while pos < len(text):
        opening = _BACKTICKS.search(text, pos)
        if opening is None:
            out.append(_escape(text[pos:]))
            break
        run = opening.group(0)
        closing = _matching_backticks(text, opening.end(), len(run))
        if closing is None:
            # No closer of the same length: the backticks are literal text.
            out.append(_escape(text[pos : opening.end()]))
            pos = opening.end()
            continue
        out.append(_escape(text[pos : opening.start()]))
        out.append(text[opening.start() : closing])
        pos = closing
    return "".join(out)


def _matching_backticks(text: str, start: int, length: int) -> int | None:
    for candidate in _BACKTICKS.finditer(text, start):
        if len(candidate.group(0)) == length:
            return candidate.end()
    return None


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace("$", "\\$")
