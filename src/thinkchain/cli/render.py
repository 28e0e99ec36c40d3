"""Show a chain in a terminal as it happens: steps on stderr, the answer on stdout.

Only reads events.  Text from the model is printed as text (no markup interpretation), so a
step that contains ``[bold]`` or escape-looking sequences shows literally.
"""

from __future__ import annotations

import sys
from typing import TextIO

from rich.console import Console
from rich.text import Text

from ..events import (
    AnswerDelta,
    AnswerDone,
    AnswerStarted,
    ChainCompleted,
    ChainEvent,
    ChainFailed,
    ChainResult,
    ChainStarted,
    CodeDone,
    CodeRun,
    CodeStarted,
    Retry,
    StepDelta,
    StepDiscarded,
    StepDone,
    StepStarted,
)
from ..labels import finished_step_heading, may_be_untitled, step_heading


def _control_free(text: str) -> str:
    """Model text without terminal control sequences (ESC, BEL, ...); newlines and tabs stay."""
    return "".join(ch for ch in text if ch in "\n\t" or (ord(ch) >= 32 and ord(ch) != 127))


def format_seconds(seconds: float) -> str:
    return f"{seconds:.2f} s" if seconds < 60 else f"{int(seconds // 60)} min {seconds % 60:.0f} s"


class TerminalView:
    """Prints events.  ``live_answer``: stream the answer to stdout (when it is a terminal)."""

    def __init__(
        self,
        console: Console | None = None,
        out: TextIO | None = None,
        *,
        live_answer: bool | None = None,
        show_steps: bool = True,
        print_answer: bool = True,
    ) -> None:
        self.console = console or Console(stderr=True, highlight=False)
        self.out = out or sys.stdout
        self.live_answer = self.out.isatty() if live_answer is None else live_answer
        self.show_steps = show_steps
        self.print_answer = print_answer
        self._in_title = False
        self._streamed_answer = False
        self._lang = "en"  # the chain's language, for the step headings
        self._line_open = False  # the last text printed did not end with a newline
        self._pending_heading: int | None = None  # a step started, its heading not printed yet
        self._held_title = ""  # its title so far, while that could still be just "Step N"

    def _raw(self, text: str, style: str | None = None) -> None:
        if text:
            self._line_open = not text.endswith("\n")
        self.console.print(Text(_control_free(text), style=style or ""), end="", soft_wrap=True)

    def _heading(self, index: int) -> None:
        """The step's heading waits for its first text: "Step 3: Title" once the title is known
        to be the step's own, the bare "Step 3" for a step without one."""
        self._pending_heading = index
        self._held_title = ""

    def _title(self, text: str) -> None:
        index = self._pending_heading
        if index is None:
            self._raw(text, "bold")
            return
        self._held_title += text
        if may_be_untitled(index, self._held_title):
            return  # "Step 1" so far: not a title of its own yet
        self._pending_heading = None
        self._raw(step_heading(index, "", self._lang), "bold cyan")
        self._raw(self._held_title.lstrip(), "bold")
        self._in_title = True

    def _content(self, text: str) -> None:
        index = self._pending_heading
        if index is not None:
            self._pending_heading = None
            self._raw(finished_step_heading(index, self._held_title, self._lang), "bold cyan")
            self._raw("\n")
        elif self._in_title:
            self._raw("\n")
        self._in_title = False
        self._raw(text)

    def handle(self, event: ChainEvent) -> None:
        if isinstance(event, ChainStarted):
            self._lang = event.lang
        elif isinstance(event, StepStarted):
            if self.show_steps:
                self._raw("\n")
                self._heading(event.index)
        elif isinstance(event, StepDelta):
            if not self.show_steps:
                return
            if event.field == "title":
                self._title(event.text)
            else:
                self._content(event.text)
        elif isinstance(event, Retry):
            if self.show_steps or event.target == "answer":
                self._raw(f"\n  ↻ attempt {event.attempt} discarded: {event.reason}\n", "yellow")
                if event.target == "step" and self.show_steps:
                    self._heading(event.index)
                if event.target == "answer" and self._streamed_answer:
                    self.out.write("\n")
        elif isinstance(event, CodeStarted):
            if self.show_steps:
                self._raw(("\n" if self._line_open else "") + "  ⚙ running…\n", "dim")
        elif isinstance(event, CodeDone):
            if self.show_steps:
                self._code_run(event.run)
        elif isinstance(event, StepDiscarded):
            if self.show_steps:
                self._raw(f"\n  ✂ step {event.index} cut: {event.reason}\n", "yellow")
        elif isinstance(event, StepDone):
            if self.show_steps:
                step = event.step
                if self._pending_heading is not None:  # a step that streamed no text
                    self._pending_heading = None
                    self._raw(
                        finished_step_heading(step.index, step.title, self._lang), "bold cyan"
                    )
                    self._raw("\n" + step.content)
                self._in_title = False
                notes = f" · {'; '.join(step.notes)}" if step.notes else ""
                self._raw(
                    f"\n  ⏱ {format_seconds(step.seconds)} · {step.usage.completion_tokens} tokens"
                    f"{notes}\n",
                    "dim",
                )
        elif isinstance(event, AnswerStarted):
            if self.show_steps:
                self._raw("\nFinal answer\n", "bold green")
        elif isinstance(event, AnswerDelta):
            if self.print_answer and self.live_answer:
                self.out.write(_control_free(event.text))
                self.out.flush()
                self._streamed_answer = True
        elif isinstance(event, AnswerDone):
            if self.print_answer:
                if self.live_answer:
                    self.out.write("\n")
                else:
                    self.out.write(event.answer.text + "\n")
                self.out.flush()
        elif isinstance(event, ChainCompleted):
            self._summary(event.result)
        elif isinstance(event, ChainFailed):
            self._summary(event.result)
            self.console.print(Text(f"error: {event.error}", style="bold red"), soft_wrap=True)

    def _code_run(self, run: CodeRun) -> None:
        """The run's output under the step: a header with status and time, then each line."""
        mark, style = ("✓", "green") if run.ok else ("✗", "red")
        self._raw(f"  {mark} output · {run.status} · {format_seconds(run.seconds)}\n", style)
        lines = run.output.rstrip("\n").splitlines() if run.output else []
        for line in lines:
            self._raw("  │ ", style)
            self._raw(line + "\n")
        if run.truncated:
            self._raw("  │ … (output cut)\n", "dim")
        if not run.ok:
            for line in (run.error or run.status).splitlines():
                self._raw(f"  │ {line}\n", "bold red")
        elif not lines:
            self._raw("  │ (no output)\n", "dim")

    def _summary(self, result: ChainResult) -> None:
        if not self.show_steps:
            return
        usage = result.usage
        self._raw(
            f"\nTotal time {format_seconds(result.seconds)} · {len(result.steps)} steps · "
            f"{usage.completion_tokens:,} generated / {usage.prompt_tokens:,} prompt tokens\n",
            "bold",
        )
