"""How a step that ran code is shown: in `thinkchain ask`'s terminal and in the proxy's text.

Both read the same hand-built events: the step's text streams (its Python block included),
the block runs (CodeStarted, CodeDone), and the step may go on after the output.
"""

from __future__ import annotations

import io

from rich.console import Console

from thinkchain.chain.events import (
    AnswerDelta,
    AnswerDone,
    AnswerStarted,
    ChainCompleted,
    ChainEvent,
    ChainResult,
    ChainStarted,
    CodeDone,
    CodeRun,
    CodeStarted,
    FinalAnswer,
    Step,
    StepDelta,
    StepDone,
    StepStarted,
    Usage,
)
from thinkchain.cli.render import TerminalView
from thinkchain.proxy.reasoning import Finished, Reasoning, RunTranslator

CODE = "print(sum(range(10)))"
BEFORE = f"Add them up.\n```python\n{CODE}\n```"
AFTER = "\nSo the sum is 45."


def chain_events(run: CodeRun, *, lang: str = "en", after: str = AFTER) -> list[ChainEvent]:
    step = Step(1, "Sum", BEFORE + after, "final_answer", 1.0, 0.1, Usage(5, 9), runs=(run,))
    answer = FinalAnswer("45", 0.1, 0.05, Usage(5, 1))
    result = ChainResult("Sum of 0..9?", lang, steps=[step], answer=answer)
    events: list[ChainEvent] = [
        ChainStarted("Sum of 0..9?", lang, "m", "iterative"),
        StepStarted(1),
        StepDelta(1, "title", "Sum"),
        StepDelta(1, "content", BEFORE),
        CodeStarted(1, CODE),
        CodeDone(1, run),
    ]
    if after:
        events.append(StepDelta(1, "content", after))
    answering = [AnswerStarted(), AnswerDelta("45"), AnswerDone(answer)]
    return [*events, StepDone(step), *answering, ChainCompleted(result)]


# -- the terminal -----------------------------------------------------------------------------


def shown(events: list[ChainEvent], *, terminal: bool = False) -> str:
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=terminal, width=100, highlight=False)
    view = TerminalView(console, io.StringIO(), live_answer=False)
    for event in events:
        view.handle(event)
    return screen.getvalue()


def test_the_terminal_shows_running_then_the_output_under_the_code() -> None:
    text = shown(chain_events(CodeRun(CODE, "45\n", "ok", None, 0.25)))
    assert "\x1b" not in text  # plain text when not a terminal
    assert text.index(CODE) < text.index("running…") < text.index("output · ok · 0.25 s")
    assert "  │ 45\n" in text
    assert text.index("│ 45") < text.index("So the sum is 45.")


def test_the_terminal_shows_a_failed_run_with_its_output_and_error_line() -> None:
    run = CodeRun(CODE, "partial\n", "error", "ZeroDivisionError: division by zero", 0.5)
    text = shown(chain_events(run))
    assert "✗ output · error · 0.50 s" in text
    assert "  │ partial\n" in text
    assert "  │ ZeroDivisionError: division by zero\n" in text


def test_the_terminal_names_the_status_of_a_run_without_error_text() -> None:
    text = shown(chain_events(CodeRun(CODE, "", "timeout", None, 5.0, truncated=True)))
    assert "output cut" in text and "  │ timeout\n" in text


def test_program_output_cannot_drive_the_terminal() -> None:
    text = shown(chain_events(CodeRun(CODE, "\x1b[2Jcleared?\x07\n", "ok", None, 0.1)))
    assert "\x1b" not in text and "\x07" not in text and "│ [2Jcleared?" in text


def test_in_a_terminal_success_and_failure_are_styled_apart() -> None:
    ok = shown(chain_events(CodeRun(CODE, "45\n", "ok", None, 0.2)), terminal=True)
    failed = shown(chain_events(CodeRun(CODE, "", "error", "NameError: x", 0.2)), terminal=True)
    assert "\x1b[" in ok
    header_ok = ok[: ok.index("output · ok")].rsplit("\n", 1)[-1]
    header_failed = failed[: failed.index("output · error")].rsplit("\n", 1)[-1]
    assert header_ok != header_failed


def test_the_terminal_heading_follows_the_chain_language() -> None:
    run = CodeRun(CODE, "45\n", "ok", None, 0.2)
    assert "\nStep 1: Sum\n" in shown(chain_events(run, lang="en"))
    assert "\n第 1 步：Sum\n" in shown(chain_events(run, lang="zh"))


# -- the proxy's reasoning text ---------------------------------------------------------------


def streamed_and_finished(events: list[ChainEvent]) -> tuple[str, str]:
    translator = RunTranslator()
    items = [item for event in events for item in translator.feed(event)]
    finished = items[-1]
    assert isinstance(finished, Finished)
    streamed = "".join(item.text for item in items if isinstance(item, Reasoning))
    return streamed, finished.outcome.reasoning


def test_the_proxy_puts_the_output_after_its_code_streamed_or_not() -> None:
    streamed, finished = streamed_and_finished(chain_events(CodeRun(CODE, "45\n", "ok", None, 1)))
    assert finished == (
        f"**Step 1: Sum**\nAdd them up.\n```python\n{CODE}\n```\n```output\n45\n```\n"
        "So the sum is 45."
    )
    assert streamed == finished


def test_the_proxy_output_ends_a_step_that_ends_with_its_code() -> None:
    run = CodeRun(CODE, "45\n", "ok", None, 0.2)
    streamed, finished = streamed_and_finished(chain_events(run, after=""))
    assert finished.endswith(f"{CODE}\n```\n```output\n45\n```")
    assert streamed == finished


def test_the_proxy_shows_what_a_failed_run_printed_and_its_error() -> None:
    run = CodeRun(CODE, "partial\n", "error", "ZeroDivisionError: division by zero", 0.2)
    streamed, finished = streamed_and_finished(chain_events(run))
    assert "```output\npartial\nerror: ZeroDivisionError: division by zero\n```" in finished
    assert streamed == finished


def test_output_with_backticks_cannot_close_its_block_early() -> None:
    run = CodeRun(CODE, "```\nnot markdown\n", "ok", None, 0.2, truncated=True)
    streamed, finished = streamed_and_finished(chain_events(run))
    assert "````output\n```\nnot markdown\n… (output cut)\n````" in finished
    assert streamed == finished


def test_a_silent_run_says_so_and_a_zh_chain_gets_zh_headings() -> None:
    run = CodeRun(CODE, "", "ok", None, 0.2)
    streamed, finished = streamed_and_finished(chain_events(run, lang="zh"))
    assert finished.startswith("**第 1 步：Sum**\n")
    assert "```output\n(no output)\n```" in finished
    assert streamed == finished


def test_output_of_code_not_found_as_written_ends_the_step() -> None:
    run = CodeRun("print( sum(range(10)) )", "45\n", "ok", None, 0.2)  # reformatted code
    _, finished = streamed_and_finished(chain_events(run))
    assert finished.endswith("So the sum is 45.\n```output\n45\n```")
