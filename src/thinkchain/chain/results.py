"""What a chain produced: its steps, its answer, its error and their token counts.

These are the values the events of :mod:`thinkchain.chain.events` carry; history, eval and the
proxy also read and write them on their own (``to_dict`` / ``from_dict``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

NextAction = Literal["continue", "final_answer"]

ErrorKind = Literal[
    "invalid_input",  # the question or settings were rejected before any generation
    "context_overflow",  # the question cannot fit the model's context window
    "step_failed",  # a step stayed invalid after every allowed attempt
    "answer_failed",  # the final-answer request failed
    "backend_error",  # the server or model failed in a way retries could not fix
    "cancelled",  # someone called cancel() or closed the event stream
    "token_budget",  # max_total_tokens was reached
    "time_budget",  # max_seconds was reached
]


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts of one model call, or the sum of several.

    ``cached_tokens`` are prompt tokens the backend did not have to evaluate again (a server's
    prompt cache, or llama.cpp's KV cache reuse); ``evaluated = prompt_tokens - cached_tokens``.
    ``estimated`` is true when a server reported no usage and completion tokens were counted
    from stream chunks instead.
    """

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    estimated: bool = False

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def evaluated_prompt_tokens(self) -> int:
        return self.prompt_tokens - self.cached_tokens

    def prompt_part(self) -> Usage:
        """The prompt side alone: what a call read, without what it wrote."""
        return Usage(prompt_tokens=self.prompt_tokens, cached_tokens=self.cached_tokens)

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.cached_tokens + other.cached_tokens,
            self.estimated or other.estimated,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cached_tokens": self.cached_tokens,
            "total_tokens": self.total_tokens,
            "estimated": self.estimated,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Usage:
        return cls(
            int(data.get("prompt_tokens", 0)),
            int(data.get("completion_tokens", 0)),
            int(data.get("cached_tokens", 0)),
            bool(data.get("estimated", False)),
        )


@dataclass(frozen=True, slots=True)
class CodeRun:
    """One fenced Python block of a step, run in the sandbox, and what came of it."""

    code: str
    output: str  # stdout and stderr in order, cut to the sandbox's output limit
    status: str  # the sandbox's status: "ok", "error", "timeout", "memory", ...
    error: str | None  # the traceback's last lines, or the limit that stopped it
    seconds: float  # start to result
    truncated: bool = False
    # Where the block ends in its step's content (just after the closing fence): its output
    # goes there.  Set by the chain, which found the block; None for a record from before.
    at: int | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "code": self.code,
            "output": self.output,
            "status": self.status,
            "error": self.error,
            "seconds": round(self.seconds, 4),
            "truncated": self.truncated,
        }
        if self.at is not None:
            data["at"] = self.at
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CodeRun:
        at = data.get("at")
        return cls(
            code=str(data.get("code", "")),
            output=str(data.get("output", "")),
            status=str(data.get("status", "ok")),
            error=data.get("error"),
            seconds=float(data.get("seconds", 0.0)),
            truncated=bool(data.get("truncated", False)),
            at=int(at) if isinstance(at, int) else None,
        )


@dataclass(frozen=True, slots=True)
class Step:
    """One finished reasoning step."""

    index: int  # 1-based
    title: str
    content: str
    next_action: NextAction
    seconds: float  # wall time of the step, retries included
    ttft: float | None  # time to the first token of the accepted attempt
    usage: Usage  # all attempts of this step together
    attempts: int = 1
    notes: tuple[str, ...] = ()  # e.g. "kept going: minimum steps", "repaired: cut at max tokens"
    # The step's Python blocks as they ran (code steps only); the code is also in ``content``.
    runs: tuple[CodeRun, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "index": self.index,
            "title": self.title,
            "content": self.content,
            "next_action": self.next_action,
            "seconds": round(self.seconds, 4),
            "ttft": None if self.ttft is None else round(self.ttft, 4),
            "usage": self.usage.to_dict(),
            "attempts": self.attempts,
            "notes": list(self.notes),
        }
        if self.runs:  # absent for steps without code, so older records read the same
            data["runs"] = [run.to_dict() for run in self.runs]
        return data

    def stripped(self) -> Step:
        """The step with its content stripped of surrounding whitespace, its runs' places
        moved with the text."""
        content = self.content.strip()
        lead = len(self.content) - len(self.content.lstrip())
        runs = tuple(
            run
            if run.at is None
            else dataclasses.replace(run, at=max(0, min(len(content), run.at - lead)))
            for run in self.runs
        )
        return dataclasses.replace(self, content=content, runs=runs)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Step:
        return cls(
            index=int(data["index"]),
            title=str(data["title"]),
            content=str(data["content"]),
            next_action=data.get("next_action", "continue"),
            seconds=float(data.get("seconds", 0.0)),
            ttft=data.get("ttft"),
            usage=Usage.from_dict(data.get("usage", {})),
            attempts=int(data.get("attempts", 1)),
            notes=tuple(data.get("notes", ())),
            runs=tuple(CodeRun.from_dict(run) for run in data.get("runs", ())),
        )


@dataclass(frozen=True, slots=True)
class FinalAnswer:
    text: str
    seconds: float
    ttft: float | None
    usage: Usage

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "seconds": round(self.seconds, 4),
            "ttft": None if self.ttft is None else round(self.ttft, 4),
            "usage": self.usage.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FinalAnswer:
        return cls(
            text=str(data["text"]),
            seconds=float(data.get("seconds", 0.0)),
            ttft=data.get("ttft"),
            usage=Usage.from_dict(data.get("usage", {})),
        )


@dataclass(frozen=True, slots=True)
class ChainError:
    kind: ErrorKind
    message: str
    server: str | None = None  # the server that failed, for backend errors
    status: int | None = None  # its HTTP status, when it answered with one
    timed_out: bool = False  # it did not answer within the timeouts

    def __str__(self) -> str:
        where = f" ({self.server})" if self.server else ""
        return f"{self.kind}{where}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "message": self.message,
            "server": self.server,
            "status": self.status,
            "timed_out": self.timed_out,
        }


# A cut generation keeps this many characters: enough to read what went wrong in it.
CUT_TEXT_CHARS = 3000


@dataclass(frozen=True, slots=True)
class CutOutput:
    """A generation the chain cut and did not keep: which step it was to be, why, what it said."""

    index: int  # the step it was to become; 0 for the final answer
    reason: str
    text: str
    repeat: bool  # it repeated earlier work (else it degenerated or ran past the token limit)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True, slots=True)
class Decision:
    """What a strategy made of its chains' answers: the normalised answers it weighed and how
    many chains gave each, which one won, and the chain whose reasoning and answer stand for
    the run (the first whose answer won)."""

    strategy: str  # "sc", ...
    reads: tuple[str | None, ...]  # each chain's normalised answer, in chain order (None: none)
    counts: dict[str, int]
    winner: str | None
    voters: int  # chains with a readable answer
    chosen: int | None  # 0-based index of the chain that stands for the run
    stopped_early: bool = False  # decided before every chain had finished
    unfinished: int = 0  # chains stopped, or never started, once it was decided

    def to_dict(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy,
            "reads": list(self.reads),
            "counts": self.counts,
            "winner": self.winner,
            "voters": self.voters,
            "chosen": self.chosen,
            "stopped_early": self.stopped_early,
            "unfinished": self.unfinished,
        }


@dataclass(slots=True)
class ChainResult:
    """Everything a chain produced; complete or not, nothing finished is ever dropped."""

    question: str
    lang: str
    steps: list[Step] = field(default_factory=list)
    answer: FinalAnswer | None = None
    error: ChainError | None = None
    seconds: float = 0.0
    model: str = ""
    mode: str = ""
    hit_step_limit: bool = False  # max_steps ended the reasoning, not the model
    # The answer the verification step replaced with its own result (None: not revised).
    answer_before_check: FinalAnswer | None = None
    retries: int = 0  # invalid attempts and transport retries together
    # Tokens spent on attempts that left nothing behind (a step that failed, a cancelled answer).
    wasted_usage: Usage = field(default_factory=Usage)
    # Every generation the chain cut (repeats, degenerate output), with its text.
    cuts: list[CutOutput] = field(default_factory=list)
    # A run of several chains (a strategy): every chain in order, and the decision that chose
    # this one, whose steps and answer are the run's.  Empty and None for a single chain.
    chains: list[ChainResult] = field(default_factory=list)
    decision: Decision | None = None

    def record_cut(self, index: int, reason: str, text: str, *, repeat: bool) -> None:
        """Keeps a cut generation, so the loop can be read afterwards; the counts follow."""
        self.cuts.append(CutOutput(index, reason, text[:CUT_TEXT_CHARS], repeat))

    @property
    def repeated_steps(self) -> int:
        """Steps cut because they said again what earlier steps said."""
        return sum(cut.repeat for cut in self.cuts)

    @property
    def degenerate_outputs(self) -> int:
        """Generations cut because they degenerated (loops, whitespace) or ran past the limit."""
        return sum(not cut.repeat for cut in self.cuts)

    @property
    def revised(self) -> bool:
        """Whether the verification step changed the answer."""
        return self.answer_before_check is not None

    @property
    def ok(self) -> bool:
        return self.error is None and self.answer is not None

    @property
    def usage(self) -> Usage:
        total = self.reasoning_usage
        if self.answer is not None:
            total = total + self.answer.usage
        return total + self.wasted_usage

    @property
    def run_usage(self) -> Usage:
        """What the whole run took: every chain of a strategy, or this chain alone."""
        if not self.chains:
            return self.usage
        total = Usage()
        for chain in self.chains:
            total = total + chain.usage
        return total

    @property
    def reasoning_usage(self) -> Usage:
        total = Usage()
        for step in self.steps:
            total = total + step.usage
        return total

    def to_dict(self) -> dict[str, Any]:
        if self.decision is not None:
            return self._run_dict(self.decision)
        return {
            "question": self.question,
            "lang": self.lang,
            "model": self.model,
            "mode": self.mode,
            "status": "completed" if self.ok else (self.error.kind if self.error else "unfinished"),
            "steps": [s.to_dict() for s in self.steps],
            "answer": self.answer.text if self.answer else None,
            "final": self.answer.to_dict() if self.answer else None,
            "error": self.error.to_dict() if self.error else None,
            "seconds": round(self.seconds, 4),
            "usage": self.usage.to_dict(),
            "wasted_usage": self.wasted_usage.to_dict(),
            "repeated_steps": self.repeated_steps,
            "degenerate_outputs": self.degenerate_outputs,
            "cuts": [cut.to_dict() for cut in self.cuts],
            "hit_step_limit": self.hit_step_limit,
            "revised": self.revised,
            "answer_before_check": (
                self.answer_before_check.text if self.answer_before_check else None
            ),
            "retries": self.retries,
        }

    def _run_dict(self, decision: Decision) -> dict[str, Any]:
        """A strategy's run: the answer that stands, the decision, and every chain."""
        return {
            "question": self.question,
            "answer": self.answer.text if self.answer else None,
            "vote": {
                "winner": decision.winner,
                "counts": decision.counts,
                "voters": decision.voters,
            },
            "winner": decision.chosen,
            "answer_keys": list(decision.reads),
            "stopped_early": decision.stopped_early,
            "seconds": round(self.seconds, 4),
            "usage": self.run_usage.to_dict(),
            "error": self.error.to_dict() if self.error else None,
            "samples": [chain.to_dict() for chain in self.chains],
        }
