"""Code steps: a step's fenced Python block runs in the sandbox, and the model sees its output.

The model decides when to write code; this module only finds the block, runs it within the
chain's limits, announces the run to the consumers and words the result for the model.
"""

from __future__ import annotations

import re
from dataclasses import replace

from thinkchain.chain.events import CodeDone, CodeRun, CodeStarted, Step
from thinkchain.chain.model_calls import ModelCalls
from thinkchain.chain.prompts import prompt
from thinkchain.sandbox import CodeResult, Sandbox

# A closed ```python (or ```py) block; the closing fence may be followed by anything.
PYTHON_BLOCK = re.compile(r"```[ \t]*(?:python3?|py)[ \t]*\n(.*?)^[ \t]*```", re.S | re.M | re.I)
# What of a long output the model is shown again (the user sees the sandbox's whole cut).
FEEDBACK_CHARS = 2000


def find_block(text: str, start: int = 0) -> tuple[str, int] | None:
    """The first closed Python block of ``text`` at or after ``start``: its code, and where it
    ends (just after its closing fence); None when there is none."""
    found = PYTHON_BLOCK.search(text, start)
    if found is None or not found.group(1).strip():
        return None
    return found.group(1).strip("\n"), found.end()


def find_code(text: str) -> str | None:
    """The first closed Python block of a step's text, or None."""
    block = find_block(text)
    return block[0] if block is not None else None


def code_block_end(text: str) -> int | None:
    """Where the first closed Python block ends (just after its closing fence), or None."""
    block = find_block(text)
    return block[1] if block is not None else None


class BlockWatch:
    """One step attempt's text as it streams, watched for its first closed Python block: the
    block the chain will run, announced to consumers as CodeWritten where it closes."""

    def __init__(self) -> None:
        self.text = ""
        self.block: tuple[str, int] | None = None

    def feed(self, delta: str) -> tuple[str, int] | None:
        """Adds ``delta``; returns the block (code, end) when this delta closed it."""
        self.text += delta
        if self.block is not None or "`" not in delta:
            return None
        self.block = find_block(self.text)
        return self.block


def as_code_run(result: CodeResult) -> CodeRun:
    return CodeRun(
        code=result.code,
        output=result.output,
        status=result.status,
        error=result.error,
        seconds=result.seconds,
        truncated=result.truncated,
    )


class CodeSteps:
    """Runs the Python blocks of one chain's steps, within ``max_code_runs``."""

    def __init__(self, calls: ModelCalls, lang: str, sandbox: Sandbox) -> None:
        self.calls = calls
        self.lang = lang
        self.sandbox = sandbox
        self.runs = 0

    @classmethod
    def for_chain(cls, calls: ModelCalls, lang: str) -> CodeSteps | None:
        """The chain's code steps, or None when its settings do not turn them on."""
        if "python" not in calls.settings.tools:
            return None
        return cls(calls, lang, Sandbox(calls.settings.code_limits))

    @property
    def instructions(self) -> str:
        """What the system prompt adds so the model knows it may write code."""
        return prompt(self.lang, "code_tools")

    async def run_step(self, step: Step) -> tuple[Step, str | None]:
        """Runs the step's Python block, if it has one.

        Returns the step with its run attached, and what the model must be told before it
        goes on (None: the step has no code, nothing to tell).
        """
        # The block after the ones that ran already (a check may write several in one step).
        after = max((run.at for run in step.runs if run.at is not None), default=0)
        block = find_block(step.content, after)
        if block is None:
            return step, None
        code, end = block
        limit = self.calls.settings.max_code_runs
        if self.runs >= limit:
            return step, prompt(self.lang, "code_spent").format(limit=limit)
        self.runs += 1
        self.calls.emit(CodeStarted(step.index, code))
        run = replace(as_code_run(await self.sandbox.arun(code)), at=end)
        if run.status == "sandbox_error":
            self.runs = limit  # the sandbox cannot run code here: no later block will run
        self.calls.emit(CodeDone(step.index, run))
        step = replace(step, runs=(*step.runs, run), seconds=step.seconds + run.seconds)
        return step, self.feedback(run)

    def feedback(self, run: CodeRun) -> str:
        """The run's result as the model reads it next."""
        output = run.output.strip()
        if run.ok and not output:
            # Silence is no result: a model told "(no output)" reads it as zero or nothing.
            return prompt(self.lang, "code_silent")
        output = output or "(no output)"
        if len(output) > FEEDBACK_CHARS:
            output = output[:FEEDBACK_CHARS] + "\n…"
        if run.ok:
            return prompt(self.lang, "code_output").format(output=output)
        error = run.error or run.status
        return prompt(self.lang, "code_error").format(error=error, output=output)
