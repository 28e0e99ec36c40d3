"""Show a chain in a terminal as it happens: steps on stderr, the answer on stdout.

A formatter of the run's view (view.py): each event goes into the fold, and what the terminal
shows is a document of that view - every step attempt as it streamed, in the order things
happened - printed as it grows.  Text from the model is printed as text (no markup
interpretation, no control characters), so a step that contains ``[bold]`` or escape-looking
sequences shows literally.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from typing import TextIO

from rich.console import Console
from rich.status import Status
from rich.text import Text

from thinkchain.chain.events import (
    AnswerStarted,
    ChainCompleted,
    ChainFailed,
    ChainRead,
    ChainResult,
    CodeRun,
    InChain,
    RunEvent,
    RunStarted,
    StepStarted,
)
from thinkchain.chain.labels import finished_step_heading, may_be_untitled, step_heading
from thinkchain.chain.replay import replay
from thinkchain.chain.run_view import RunView
from thinkchain.chain.text import format_seconds
from thinkchain.chain.view import (
    AnswerAttempt,
    ChainView,
    CodeBegan,
    CodeEnded,
    Notice,
    StepAttempt,
    TimelineEntry,
)

__all__ = ["TerminalView", "format_seconds"]

Segment = tuple[str, str]  # (text, rich style)


def _control_free(text: str) -> str:
    """Model text without terminal control sequences (ESC, BEL, ...); newlines and tabs stay."""
    return "".join(ch for ch in text if ch in "\n\t" or (ord(ch) >= 32 and ord(ch) != 127))


@dataclass
class _Err:
    """The stderr document being built: its segments and whether its last line is open."""

    segments: list[Segment] = field(default_factory=list)
    line_open: bool = False

    def add(self, text: str, style: str = "") -> None:
        if text:
            self.line_open = not text.endswith("\n")
            self.segments.append((_control_free(text), style))


@dataclass
class _Out:
    text: str = ""
    streamed: bool = False  # answer text was written as it streamed


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
        self.run = RunView()
        self._status: Status | None = None
        # What is printed already; entries before the last never change, so their document
        # is kept rather than built again at every event.
        self._printed_err = 0
        self._printed_out = 0
        self._frozen = 0  # timeline entries whose document is in _err_done / _out_done
        self._err_done = _Err()
        self._out_done = _Out()

    @property
    def view(self) -> ChainView:
        """The chain shown as it happens (a run of one chain)."""
        return self.run.chains[0]

    def handle(self, event: RunEvent) -> None:
        """A chain's events are shown as they happen; a strategy's chains, which cannot all
        stream to one terminal readably, as a moving status line, a line per finished chain,
        the decision, then the chosen chain's steps and its answer (on stdout, like a chain's)."""
        run = self.run
        run.apply(event)
        if isinstance(event, RunStarted):
            if self.show_steps:
                self._status = self.console.status(f"{event.chains} {event.strategy} chains…")
                self._status.start()
        elif not run.several:
            self._chain_document()
        elif isinstance(event, InChain):
            self._progress(event)
        elif isinstance(event, ChainRead):
            if self.show_steps:
                self.console.print(read_line(event, run.size), soft_wrap=True)
        elif isinstance(event, (ChainCompleted, ChainFailed)):
            self._end(event.result)

    def close(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None

    def _chain_document(self) -> None:
        timeline = self.view.timeline
        while self._frozen < len(timeline) - 1:
            self._entry(self._err_done, self._out_done, self._frozen)
            self._frozen += 1
        err = _Err(list(self._err_done.segments), self._err_done.line_open)
        out = _Out(self._out_done.text, self._out_done.streamed)
        for position in range(self._frozen, len(timeline)):
            self._entry(err, out, position)
        if self.view.result is not None:
            self._summary(err)
        self._print(err.segments, out.text)

    def _progress(self, event: InChain) -> None:
        if self._status is None:
            return
        inner, which = event.event, f"{event.chain + 1}/{self.run.size}"
        if isinstance(inner, StepStarted):
            self._status.update(f"chain {which} · step {inner.index}")
        elif isinstance(inner, AnswerStarted):
            self._status.update(f"chain {which} · answering")

    def _end(self, result: ChainResult) -> None:
        self.close()
        view = self.run
        if self.show_steps and view.decision is not None:
            self.console.print(decision_line(view), soft_wrap=True)
        if result.decision is not None and result.decision.chosen is not None:
            if not self.print_answer:
                return  # --json: the run is printed whole, as JSON
            if self.show_steps:
                role = next((r.role for r in view.reads if r.chain == result.decision.chosen), "")
                self.console.print(
                    Text(f"\nWinning chain: {role} {result.decision.chosen + 1}", style="bold")
                )
            # The chosen chain told again, as it ended, in a chain's own view.
            chosen = dataclasses.replace(result, chains=[], decision=None)
            shown = TerminalView(
                self.console,
                self.out,
                live_answer=False,
                show_steps=self.show_steps,
                print_answer=self.print_answer,
            )
            for replayed in replay(chosen):
                shown.handle(replayed)
        elif result.error is not None and self.show_steps:
            self.console.print(Text(f"error: {result.error}", style="bold red"), soft_wrap=True)

    # -- printing what is new ------------------------------------------------------------------

    def _print(self, segments: list[Segment], out: str) -> None:
        position = 0
        for text, style in segments:
            end = position + len(text)
            if end > self._printed_err:
                new = text[max(0, self._printed_err - position) :]
                self.console.print(Text(new, style=style), end="", soft_wrap=True)
                self._printed_err = end
            position = end
        if len(out) > self._printed_out:
            self.out.write(out[self._printed_out :])
            self.out.flush()
            self._printed_out = len(out)

    # -- the document --------------------------------------------------------------------------

    def _entry(self, err: _Err, out: _Out, position: int) -> None:
        entry = self.view.timeline[position]
        previous: TimelineEntry | None = self.view.timeline[position - 1] if position else None
        if isinstance(entry, StepAttempt):
            if self.show_steps:
                # A retry's new text starts under the notice, its heading printed again.
                retried = (
                    isinstance(previous, Notice)
                    and previous.kind == "retry"
                    and previous.target == "step"
                )
                headed = not entry.restarted or retried
                self._step(err, entry, headed)
        elif isinstance(entry, Notice):
            self._notice(err, out, entry)
        else:
            self._answer(err, out, entry)

    def _step(self, err: _Err, attempt: StepAttempt, headed: bool) -> None:
        lang, index = self.view.lang, attempt.index
        if not attempt.restarted:
            err.add("\n")
        pending, held, in_title = headed, "", False
        for item in attempt.log:
            if isinstance(item, CodeBegan):
                err.add(("\n" if err.line_open else "") + "  ⚙ running…\n", "dim")
            elif isinstance(item, CodeEnded):
                self._code_run(err, item.run)
            elif item.field == "title":
                if not pending:
                    err.add(item.text, "bold")
                    continue
                held += item.text
                if may_be_untitled(index, held):
                    continue  # "Step 1" so far: not a title of its own yet
                pending = False
                err.add(step_heading(index, "", lang), "bold cyan")
                err.add(held.lstrip(), "bold")
                in_title = True
            else:
                if pending:
                    pending = False
                    err.add(finished_step_heading(index, held, lang), "bold cyan")
                    err.add("\n")
                elif in_title:
                    err.add("\n")
                in_title = False
                err.add(item.text)
        step = attempt.step
        if step is None:
            return
        if pending:  # a step that streamed no text
            err.add(finished_step_heading(step.index, step.title, lang), "bold cyan")
            err.add("\n" + step.content)
        notes = f" · {'; '.join(step.notes)}" if step.notes else ""
        err.add(
            f"\n  ⏱ {format_seconds(step.seconds)} · {step.usage.completion_tokens} tokens"
            f"{notes}\n",
            "dim",
        )

    def _notice(self, err: _Err, out: _Out, notice: Notice) -> None:
        if notice.kind == "discarded":
            if self.show_steps:
                err.add(f"\n  ✂ step {notice.index} cut: {notice.reason}\n", "yellow")
            return
        if self.show_steps or notice.target == "answer":
            err.add(f"\n  ↻ attempt {notice.attempt} discarded: {notice.reason}\n", "yellow")
            if notice.target == "answer" and out.streamed:
                out.text += "\n"

    def _answer(self, err: _Err, out: _Out, answer: AnswerAttempt) -> None:
        if answer.announced and self.show_steps:
            err.add("\nFinal answer\n", "bold green")
        if not self.print_answer:
            return
        if self.live_answer and answer.text:
            out.text += _control_free(answer.text)
            out.streamed = True
        if answer.final is not None:
            out.text += "\n" if self.live_answer else answer.final.text + "\n"

    def _code_run(self, err: _Err, run: CodeRun) -> None:
        """The run's output under the step: a header with status and time, then each line."""
        mark, style = ("✓", "green") if run.ok else ("✗", "red")
        err.add(f"  {mark} output · {run.status} · {format_seconds(run.seconds)}\n", style)
        lines = run.output.rstrip("\n").splitlines() if run.output else []
        for line in lines:
            err.add("  │ ", style)
            err.add(line + "\n")
        if run.truncated:
            err.add("  │ … (output cut)\n", "dim")
        if not run.ok:
            for line in (run.error or run.status).splitlines():
                err.add(f"  │ {line}\n", "bold red")
        elif not lines:
            err.add("  │ (no output)\n", "dim")

    def _summary(self, err: _Err) -> None:
        result = self.view.result
        assert result is not None
        if self.show_steps:
            usage = result.usage
            err.add(
                f"\nTotal time {format_seconds(result.seconds)} · {len(result.steps)} steps · "
                f"{usage.completion_tokens:,} generated / {usage.prompt_tokens:,} prompt tokens\n",
                "bold",
            )
        if self.view.error is not None:
            err.add(f"error: {self.view.error}\n", "bold red")


# -- a run of several chains -------------------------------------------------------------------


def _first_line(text: str, limit: int = 70) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def read_line(read: ChainRead, size: int) -> Text:
    """A finished chain of the run: what the strategy read of its answer, and what it took."""
    result = read.result
    head = Text(f"{read.role} {read.chain + 1}/{size}: ", style="bold")
    if result.error is not None and result.error.kind == "cancelled" and result.answer is None:
        return head + Text("stopped (the vote was already decided)", style="dim")
    if read.answer is None:
        why = str(result.error) if result.error else "no readable answer"
        return head + Text(why, style="yellow")
    usage = result.usage
    return (
        head
        + Text(read.answer, style="bold green")
        + Text(f"  {_first_line(result.answer.text if result.answer else '')}")
        + Text(
            f"  · {len(result.steps)} steps · {format_seconds(result.seconds)} · "
            f"{usage.completion_tokens:,} tokens",
            style="dim",
        )
    )


def decision_line(view: RunView) -> Text:
    """The decision: each answer and how many chains gave it, the winner, what it all took."""
    decision, result = view.decision, view.result
    assert decision is not None and result is not None
    role = view.reads[0].role if view.reads else "chain"
    counts = sorted(decision.counts.items(), key=lambda kv: -kv[1])
    tally = ", ".join(f"{answer} ×{n}" for answer, n in counts) or "no readable answer"
    text = Text("vote: ", style="bold") + Text(tally)
    if decision.winner is not None:
        text += Text(" → ") + Text(decision.winner, style="bold green")
        text += Text(f" ({decision.counts[decision.winner]} of {view.size} {role}s)")
    if decision.stopped_early and decision.unfinished:
        text += Text(
            f" · {decision.unfinished} {role}(s) stopped: the vote was decided", style="dim"
        )
    text += Text(
        f" · {format_seconds(result.seconds)} · "
        f"{result.run_usage.completion_tokens:,} tokens in all",
        style="dim",
    )
    return text
