"""``thinkchain ask --strategy sc``: K chains, each answer as it lands, the vote, the winner.

The K chains cannot all stream their steps to one terminal readably, so while they run only a
status line moves (which sample, which step); each sample's answer is printed when it
finishes, then the vote, then the winning chain's steps and its answer (on stdout, like
``ask``).
"""

from __future__ import annotations

import json
import sys

import typer
from rich.text import Text

from ..backends.base import Backend
from ..cancel import CancelToken
from ..events import AnswerStarted, StepStarted
from ..replay import replay
from ..settings import ChainSettings
from ..strategies import Outcome, SampleDone, SampleEvent, SelfConsistency, VoteDone
from .common import err_console
from .interrupt import ctrl_c_cancels
from .render import TerminalView, format_seconds


def _first_line(text: str, limit: int = 70) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _sample_line(done: SampleDone, k: int) -> Text:
    result = done.result
    head = Text(f"sample {done.sample + 1}/{k}: ", style="bold")
    if result.error is not None and result.error.kind == "cancelled" and result.answer is None:
        return head + Text("stopped (the vote was already decided)", style="dim")
    if done.answer_key is None:
        why = str(result.error) if result.error else "no readable answer"
        return head + Text(why, style="yellow")
    usage = result.usage
    return (
        head
        + Text(done.answer_key, style="bold green")
        + Text(f"  {_first_line(result.answer.text if result.answer else '')}")
        + Text(
            f"  · {len(result.steps)} steps · {format_seconds(result.seconds)} · "
            f"{usage.completion_tokens:,} tokens",
            style="dim",
        )
    )


def _vote_line(outcome: Outcome, k: int) -> Text:
    counts = sorted(outcome.vote.counts.items(), key=lambda kv: -kv[1])
    tally = ", ".join(f"{answer} ×{n}" for answer, n in counts) or "no readable answer"
    text = Text("vote: ", style="bold") + Text(tally)
    if outcome.vote.winner is not None:
        text += Text(" → ") + Text(outcome.vote.winner, style="bold green")
        text += Text(f" ({outcome.vote.counts[outcome.vote.winner]} of {k} samples)")
    if outcome.stopped_early and outcome.cancelled_samples:
        text += Text(
            f" · {outcome.cancelled_samples} sample(s) stopped: the vote was decided", style="dim"
        )
    usage = outcome.usage
    text += Text(
        f" · {format_seconds(outcome.seconds)} · {usage.completion_tokens:,} tokens in all",
        style="dim",
    )
    return text


def run_self_consistency(
    backend: Backend,
    settings: ChainSettings,
    question: str,
    *,
    k: int,
    cancel: CancelToken,
    show_steps: bool = True,
    as_json: bool = False,
) -> Outcome:
    strategy = SelfConsistency(backend, settings, k=k)
    outcome: Outcome | None = None
    steps_seen = [0] * k
    status = err_console.status(f"{k} samples…")
    if show_steps:
        status.start()
    try:
        for event in strategy.stream(question, cancel=cancel):
            if isinstance(event, SampleEvent):
                if isinstance(event.event, StepStarted):
                    steps_seen[event.sample] = event.event.index
                    status.update(f"sample {event.sample + 1}/{k} · step {event.event.index}")
                elif isinstance(event.event, AnswerStarted):
                    status.update(f"sample {event.sample + 1}/{k} · answering")
            elif isinstance(event, SampleDone):
                if show_steps:
                    err_console.print(_sample_line(event, k), soft_wrap=True)
            elif isinstance(event, VoteDone):
                outcome = event.outcome
    finally:
        status.stop()
    assert outcome is not None
    if show_steps:
        err_console.print(_vote_line(outcome, k), soft_wrap=True)
    winner = outcome.winning_chain
    if as_json:
        sys.stdout.write(json.dumps(outcome.to_dict(), ensure_ascii=False, indent=2) + "\n")
    elif winner is not None:
        if show_steps:
            number = (outcome.winner or 0) + 1
            err_console.print(Text(f"\nWinning chain: sample {number}", style="bold"))
        view = TerminalView(show_steps=show_steps, live_answer=False)
        for replayed in replay(winner):  # the view only reads events
            view.handle(replayed)
    if outcome.error is not None and show_steps:
        err_console.print(Text(f"error: {outcome.error}", style="bold red"), soft_wrap=True)
    return outcome


def ask_self_consistency(
    backend: Backend,
    settings: ChainSettings,
    question: str,
    *,
    k: int,
    quiet: bool = False,
    as_json: bool = False,
) -> None:
    """The ``ask --strategy sc`` command after its options are read; exits 1 without a winner."""
    cancel = CancelToken()
    with ctrl_c_cancels(cancel):
        outcome = run_self_consistency(
            backend, settings, question, k=k, cancel=cancel, show_steps=not quiet, as_json=as_json
        )
    if not outcome.ok:
        cancelled = cancel.cancelled or (
            outcome.error is not None and outcome.error.kind == "cancelled"
        )
        raise typer.Exit(130 if cancelled else 1)
