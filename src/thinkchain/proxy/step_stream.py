"""A step's reasoning text, and the answer, written as they stream so that the joined deltas
read exactly like the finished text (step_text.step_text, the answer's text).

A finished step keeps its title and content stripped and the answer its text; the model's
stream carries the blank lines around them (a single-pass step ends with the blank line
before the next heading).  So blanks at either end of a field are held back until text
follows them.  With code steps on, text after a closed Python block also waits: the block's
output goes right after the code, and the model may write on before the code runs.
"""

from __future__ import annotations

from ..events import CodeRun, Step
from ..labels import has_own_title, may_be_untitled
from ..shapes.code import code_block_end
from .step_text import heading_end, heading_start, output_block, step_text, untitled_heading


class Trimmed:
    """One field's deltas, written as its stripped whole reads."""

    def __init__(self) -> None:
        self.raw = ""  # every delta, as the model wrote it
        self.shown = 0  # characters of the stripped text written so far

    @property
    def whole(self) -> str:
        return self.raw.strip()

    def feed(self, text: str) -> str:
        self.raw += text
        return self.take()

    def take(self, upto: int | None = None) -> str:
        """The stripped text not written yet, up to ``upto`` characters of it."""
        new = self.whole[self.shown : upto]
        self.shown += len(new)
        return new


class StepStream:
    """One attempt at a step, from its heading on; each method returns the text to write."""

    def __init__(self, index: int, lang: str, *, sep: str = "", code: bool = False) -> None:
        self.index = index
        self.lang = lang
        self.sep = sep  # written before the step's first text: the break after earlier text
        self.code = code  # a Python block may run: text after it waits for the output
        self.text = ""  # the step's text written so far, heading included
        self.field: str | None = None
        self.title = Trimmed()
        self.headed = False  # the heading is written (it waits while the title may be "Step N")
        self.content = Trimmed()
        self.resume = 0  # where in the content the next Python block is looked for

    def _write(self, text: str) -> str:
        if not text:
            return ""
        out = text if self.text else self.sep + text
        self.text += text
        return out

    def _content_limit(self) -> int | None:
        """The end of the closed Python block that has not run yet, if any."""
        if not self.code:
            return None
        end = code_block_end(self.content.whole[self.resume :])
        return None if end is None else self.resume + end

    def delta(self, field: str, text: str) -> str:
        if field == "title":
            if self.field == "content":
                return ""  # a title written after the content: the heading is already out
            self.field = "title"
            self.title.raw += text
            if not self.headed:
                if may_be_untitled(self.index, self.title.whole):
                    return ""  # "Step 1" so far: the heading waits until the title is known
                self.headed = True
                return self._write(heading_start(self.index, self.lang) + self.title.take())
            return self._write(self.title.take())
        out = self._open_heading() if self.field != "content" else ""
        self.field = "content"
        self.content.raw += text
        out += self.content.take(self._content_limit())
        return self._write(out)

    def _open_heading(self) -> str:
        """The heading, once the content starts: with the step's own title, or "Step N"."""
        if self.headed:
            return heading_end()
        self.headed = True
        if has_own_title(self.index, self.title.whole):
            return heading_start(self.index, self.lang) + self.title.take() + heading_end()
        return untitled_heading(self.index, self.lang)

    def output(self, run: CodeRun) -> str:
        """The run's output right after its code, then the content that waited for it."""
        block = output_block(run, self.text)
        self.resume = self.content.shown
        return self._write(block + self.content.take(self._content_limit()))

    def finish(self, step: Step) -> str:
        """What the finished step says beyond the text written (text that waited, a title
        it took for empty content); nothing when the stream went its own way (a late title)."""
        whole = step_text(step, self.lang)
        return self._write(whole[len(self.text) :]) if whole.startswith(self.text) else ""
