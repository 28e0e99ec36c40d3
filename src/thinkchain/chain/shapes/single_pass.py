"""The ``single-pass`` chain shape: the model writes its whole titled chain in one reply.

One generation instead of one call per step: the model reasons freely, as in plain
chain-of-thought, and the :class:`~thinkchain.chain.splitter.StepSplitter` turns the stream into
the same step events the iterative shape emits, so the page, the CLI and the proxy show live
titled steps with their own times and tokens.

What the loop still enforces, by stopping the stream and continuing in a new request that
carries the steps written so far (the in-process backend finds them in its KV cache):

* ``max_steps``: a heading for one step too many ends the reasoning; the answer is asked for;
* ``min_steps``: an answer that comes too early is held back and the model asked to check;
* a transport failure mid-stream keeps the finished steps and continues after them;
* a step that repeats an earlier one, degenerates (the guard's loop or whitespace checks) or
  runs past ``max_tokens_per_step`` is dropped: the chain continues after the finished
  steps a little hotter, and after ``max_attempts`` such runaways the reasoning ends and the
  answer is asked for (a model that copies a step is stuck, not done);
* with code steps on, a step ends at its closed Python block: the block runs in the sandbox
  and the chain continues after that step with the output in view.

Usage: the call's completion tokens are split between steps by the chunks each received;
its prompt tokens are counted with the first step of the request.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from time import perf_counter

from thinkchain.chain.backend import GenerationRequest, Message
from thinkchain.chain.events import (
    AnswerDelta,
    AnswerDone,
    AnswerStarted,
    ChainStarted,
    CodeWritten,
    Step,
    StepDelta,
    StepDiscarded,
    StepDone,
    StepStarted,
    Usage,
)
from thinkchain.chain.guards import (
    COPIED_INSTRUCTIONS,
    Degenerated,
    copies_instructions,
    why_repeated,
)
from thinkchain.chain.labels import label
from thinkchain.chain.model_calls import ModelCalls, RetryTarget
from thinkchain.chain.prompts import prompt
from thinkchain.chain.shapes.answer_section import AnswerSection
from thinkchain.chain.shapes.code import CodeSteps, find_block
from thinkchain.chain.splitter import Piece, StepSplitter

TOKENS_PER_STEP_BUDGET = 3  # the one reply may use max_tokens_per_step × this many tokens


class EndStream(Exception):
    """Raised from the text callback to close the stream on purpose."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason  # "step_limit", "too_early", "runaway"


@dataclass
class _OpenStep:
    index: int
    heading: str  # the heading line as the model wrote it
    started: float
    title: str = ""
    content: list[str] = field(default_factory=list)
    tokens: int = 0
    ttft: float | None = None


class SinglePass:
    def __init__(self, calls: ModelCalls, question: str, lang: str) -> None:
        self.calls = calls
        self.settings = calls.settings
        self.lang = lang
        self.code = CodeSteps.for_chain(calls, lang)
        # With code steps on, the layout itself shows a step that computes with a program.
        system = prompt(
            lang, "single_pass_system" if self.code is None else "single_pass_code_system"
        )
        self.base: list[Message] = calls.opening(system, question, lang)
        self.transcript = ""  # raw text of every finished step, as the model wrote it
        self.open: _OpenStep | None = None
        self.splitter = StepSplitter()
        self.answer: AnswerSection | None = None  # set once the reply reaches its answer
        self.answer_announced = False
        self.stop_reason: str | None = None
        self.runaway_reason = ""
        self.temperature = calls.settings.temperature  # raised after a runaway, to leave the rut

    # -- requests -----------------------------------------------------------------------------

    def _request(self, follow_up: str | None = None) -> GenerationRequest:
        messages = list(self.base)
        if self.transcript:
            messages.append({"role": "assistant", "content": self.transcript.rstrip()})
            messages.append({"role": "user", "content": follow_up or self._continue_text()})
        s = self.settings
        return GenerationRequest(
            messages=messages,
            max_tokens=s.max_tokens_per_step * TOKENS_PER_STEP_BUDGET,
            temperature=self.temperature,
            seed=s.seed,
            purpose="chain",
        )

    def _continue_text(self) -> str:
        return prompt(self.lang, "continue_chain").format(next=len(self.calls.result.steps) + 1)

    def _restart_after_failure(self) -> tuple[RetryTarget, int, GenerationRequest]:
        """A transport failure cut the stream: keep finished steps, continue after them."""
        index = self.open.index if self.open else 0
        target: RetryTarget = "answer" if self.answer is not None else "step"
        self._drop_open()
        self._reset_stream_state()
        return target, index, self._request()

    def _reset_stream_state(self) -> None:
        self.splitter = StepSplitter()
        self.answer = None

    # -- the loop -----------------------------------------------------------------------------

    async def run(self) -> None:
        calls, s, result = self.calls, self.settings, self.calls.result
        calls.check_fits(self.base)
        calls.emit(ChainStarted(result.question, self.lang, calls.backend.model, result.mode))
        follow_up: str | None = None
        # Replies in a row that stopped before min_steps without adding a step; bounded so the
        # loop ends (a reply that adds steps brings the minimum closer).
        early_answers = 0
        runaways = 0  # replies cut for a step that repeated, degenerated or ran too long
        while True:
            self._reset_stream_state()
            self.stop_reason = None
            request = self._request(follow_up)
            follow_up = None
            completion_usage = Usage()
            first_step = len(result.steps)
            try:
                generated = await calls.generate(
                    request,
                    "step",
                    len(result.steps) + 1,
                    self._on_text,
                    restart=self._restart_after_failure,
                )
                completion_usage = generated.completion.usage
                if self.stop_reason is None:
                    for piece in self.splitter.finish():
                        self._handle(piece)
                    self._close_open()  # the reply ended inside a step: that step is complete
                    if self.answer is None and len(result.steps) < s.min_steps:
                        # The reply stopped short of min_steps without an answer: held to
                        # the minimum exactly as an early answer is.
                        self.stop_reason = "too_early"
            except EndStream as end:
                self.stop_reason = end.reason
            except Degenerated as bad:
                self._record_runaway(bad.reason, fallback=bad.text)
                self.stop_reason, self.runaway_reason = "runaway", bad.reason
            self._account_prompt(completion_usage, first_step)
            if self.stop_reason == "code":
                # A step ended with a Python block: run it, then go on with its output in view.
                follow_up = await self._run_code()
                continue
            if self.stop_reason == "runaway":
                runaways += 1
                if self._drop_runaway(runaways):
                    continue
                break
            if self.stop_reason == "too_early" and len(result.steps) > first_step:
                early_answers = 0  # the reply added steps: progress, never a reason to give up
            if self.stop_reason == "too_early" and early_answers < s.max_attempts:
                early_answers += 1
                # The model answered before min_steps: its answer is held back; ask it to check.
                remaining = s.min_steps - len(result.steps)
                follow_up = prompt(self.lang, "keep_checking_chain").format(
                    remaining=remaining, next=len(result.steps) + 1
                )
                continue
            if self.stop_reason in ("step_limit", "too_early"):
                self._drop_open()
                result.hit_step_limit = self.stop_reason == "step_limit"
                break
            self._close_open()
            if self.answer is not None and self.answer.text.strip():
                if not self._answer_copies_instructions(self.answer):
                    final = self.answer.final()
                    result.answer = final
                    calls.emit(AnswerDone(final))
                    return
            break
        # No usable answer in the reply: ask for it, with the steps as the assistant's turn.
        messages = list(self.base)
        if self.transcript:
            messages.append({"role": "assistant", "content": self.transcript.rstrip()})
        await calls.answer(messages, self.lang, announce=not self.answer_announced)

    def _answer_copies_instructions(self, answer: AnswerSection) -> bool:
        """An answer section that copies the layout is dropped (with a notice) and the
        answer asked for on its own, like an answer that degenerated."""
        if not copies_instructions(answer.text, [str(self.base[0]["content"])]):
            return False
        self.runaway_reason = COPIED_INSTRUCTIONS
        self._record_runaway(COPIED_INSTRUCTIONS)
        self._drop_runaway(1)
        return True

    async def _run_code(self) -> str:
        """Runs the code of the step just closed (the last one, its prompt tokens counted by
        now); returns the text that asks the model to go on."""
        assert self.code is not None
        steps = self.calls.result.steps
        step, told = await self.code.run_step(steps[-1])
        steps[-1] = step
        self.calls.emit(StepDone(step))
        return f"{told}\n\n{self._continue_text()}" if told else self._continue_text()

    # -- stream handling ----------------------------------------------------------------------

    def _on_text(self, delta: str) -> bool:
        """Handles one piece of the reply; True once the reply must end here.

        Ending goes through the request's halt rather than an exception, so the backend
        finishes the call normally and its usage (the prompt tokens above all) is counted.
        """
        if self.stop_reason is not None:
            return True
        try:
            for piece in self.splitter.feed(delta):
                self._handle(piece)
        except EndStream as end:
            self.stop_reason = end.reason
            return True
        # Token accounting: each chunk is one token for llama.cpp and about one for servers.
        if self.answer is not None:
            self.answer.count_token()
        elif self.open is not None:
            self.open.tokens += 1
            limit = self.settings.max_tokens_per_step
            if self.open.tokens >= limit:
                self.stop_reason = "runaway"
                self.runaway_reason = f"step {self.open.index} ran past {limit} tokens"
                self._record_runaway(self.runaway_reason)
                return True
        return False

    def _handle(self, piece: Piece) -> None:
        calls = self.calls
        if piece.kind == "step":
            self._close_open()
            self._open_step(piece.text, piece.number)
        elif piece.kind == "title":
            assert self.open is not None
            self.open.title = piece.text
            calls.emit(StepDelta(self.open.index, "title", piece.text))
        elif piece.kind == "content":
            if self.open is None:
                if not piece.text.strip():
                    self.transcript += piece.text
                    return
                # Text outside any step (a reply that begins without a heading, often right
                # after a program's output): an untitled step, held to max_steps as any.
                self._open_step("", 0)
            assert self.open is not None
            if self.open.ttft is None:
                self.open.ttft = perf_counter() - self.open.started
            text, block = piece.text, None
            if self.code is not None and "`" in text:
                before = "".join(self.open.content)
                block = find_block(before + text)
                if block is not None:  # the step ends with its block: nothing after it shows
                    text = text[: max(0, block[1] - len(before))]
            if text:
                self.open.content.append(text)
                calls.emit(StepDelta(self.open.index, "content", text))
            if block is not None:
                calls.emit(CodeWritten(self.open.index, *block))
                self._end_at_code()
        elif piece.kind == "answer_start":
            self._close_open()
            if len(calls.result.steps) < self.settings.min_steps:
                raise EndStream("too_early")
            self.answer = AnswerSection()
            if not self.answer_announced:
                self.answer_announced = True
                calls.emit(AnswerStarted())
        elif piece.kind == "answer":
            assert self.answer is not None
            self.answer.parts.append(piece.text)
            calls.emit(AnswerDelta(piece.text))

    def _record_runaway(self, reason: str, fallback: str = "") -> None:
        """Counts a runaway and keeps the text that ran away: the open step's, or the answer's."""
        if self.answer is not None:
            index, text = 0, self.answer.text
        elif self.open is not None:
            index, text = self.open.index, "".join(self.open.content)
        else:
            index, text = len(self.calls.result.steps) + 1, fallback
        self.calls.result.record_cut(index, reason, text, repeat=False)

    def _drop_runaway(self, runaways: int) -> bool:
        """Drops what ran away (the open step, or the answer being written); True to try the
        reasoning again after the finished steps, False to go and ask for the answer."""
        calls = self.calls
        if self.answer is not None:
            # The steps are fine; only the answer degenerated: ask for it on its own.
            calls.waste(self.answer.spent())
            calls.retry("answer", 0, 1, self.runaway_reason)
            self.answer = None
            return False
        index = self.open.index if self.open else len(calls.result.steps) + 1
        self._drop_open()
        if runaways >= self.settings.max_attempts:
            calls.emit(StepDiscarded(index, f"{self.runaway_reason}; reasoning stops here"))
            return False
        self.temperature = calls.hotter(self.temperature)
        calls.retry("step", index, runaways, self.runaway_reason)
        return True

    def _open_step(self, heading: str, number: int) -> None:
        """Opens the next step, or ends the reasoning if it would be one too many."""
        if len(self.calls.result.steps) >= self.settings.max_steps:
            raise EndStream("step_limit")
        index = len(self.calls.result.steps) + 1
        self.open = _OpenStep(index=index, heading=heading, started=perf_counter())
        self.calls.emit(StepStarted(index))

    def _drop_open(self) -> None:
        if self.open is not None:
            self.calls.waste_tokens(self.open.tokens)
            self.open = None

    def _end_at_code(self) -> None:
        """Ends the step, and the reply, at the step's closed Python block."""
        assert self.open is not None
        self.open.content = ["".join(self.open.content) + "\n"]
        self.open.tokens += 1  # the chunk that closed the block
        self._close_open(announce=False)  # the last step now; announced once its code ran
        raise EndStream("code")

    def _close_open(self, *, announce: bool = True) -> None:
        """Turns the open step into a finished one (announced unless its code must run first)."""
        step_state, self.open = self.open, None
        if step_state is None:
            return
        calls = self.calls
        content = "".join(step_state.content).strip()
        if not content and not step_state.title:
            return
        repeated = why_repeated(content, [step.content for step in calls.result.steps])
        if repeated:
            tokens = Usage(completion_tokens=step_state.tokens, estimated=True)
            calls.cut(step_state.index, repeated, content, repeat=True, usage=tokens)
            self.runaway_reason = f"step {step_state.index}: {repeated}"
            raise EndStream("runaway")
        title = step_state.title or label(self.lang, "untitled_step", index=step_state.index)
        step = Step(
            index=step_state.index,
            title=title,
            content=content or title,
            next_action="continue",
            seconds=perf_counter() - step_state.started,
            ttft=step_state.ttft,
            usage=Usage(completion_tokens=step_state.tokens),
        )
        calls.result.steps.append(step)
        self.transcript += step_state.heading + "".join(step_state.content)
        if announce:
            calls.emit(StepDone(step))

    def _account_prompt(self, usage: Usage, first_step: int) -> None:
        """The call's prompt tokens go to the first step it produced, else to the answer it
        produced; a call that produced neither spent them for nothing."""
        if not usage.prompt_tokens:
            return
        prompt_part = usage.prompt_part()
        steps = self.calls.result.steps
        if first_step >= len(steps) and self.answer is not None:
            self.answer.prompt = prompt_part  # wasted with the answer if it is thrown away
        elif first_step < len(steps):
            steps[first_step] = replace(
                steps[first_step], usage=steps[first_step].usage + prompt_part
            )
        else:
            self.calls.waste(prompt_part)


async def run_single_pass(calls: ModelCalls, question: str, lang: str) -> None:
    await SinglePass(calls, question, lang).run()
