"""One chain as the history keeps it: what was asked, with what, and every finished step."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from thinkchain.chain.events import ChainError, ChainResult, FinalAnswer, Step, Usage

# Status values besides the error kinds of ChainError: still running, or its process died.
RUNNING = "running"
COMPLETED = "completed"
INTERRUPTED = "interrupted"


@dataclass
class ChainRecord:
    id: str
    created_at: float
    question: str
    status: str
    updated_at: float = 0.0
    lang: str = ""
    model: str = ""
    mode: str = ""
    backend: str = ""
    source: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    error: ChainError | None = None
    steps: list[Step] = field(default_factory=list)
    step_count: int = 0
    answer: FinalAnswer | None = None
    seconds: float | None = None  # wall time of the whole chain; None until it ends
    usage: Usage | None = None
    stats: dict[str, Any] = field(default_factory=dict)
    paired_with: str | None = None
    # The direct answer that ran beside this chain ("compare with a direct answer").
    paired: ChainRecord | None = None
    conversation: str = ""  # the id of the conversation's first chain; "" before it is known

    @property
    def thinking_seconds(self) -> float:
        """The chain's wall time, or, for a chain that never ended, the time of its steps."""
        if self.seconds is not None:
            return self.seconds
        done = sum(step.seconds for step in self.steps)
        return done + (self.answer.seconds if self.answer else 0.0)

    @property
    def total_usage(self) -> Usage:
        if self.usage is not None:
            return self.usage
        total = Usage()
        for step in self.steps:
            total = total + step.usage
        return total + (self.answer.usage if self.answer else Usage())

    @classmethod
    def from_result(
        cls,
        result: ChainResult,
        *,
        chain_id: str = "",
        created_at: float | None = None,
        backend: str = "",
        source: str = "",
        settings: dict[str, Any] | None = None,
        conversation: str = "",
    ) -> ChainRecord:
        """The record of a chain that just ended, built from its result alone."""
        return cls(
            id=chain_id,
            conversation=conversation or chain_id,
            created_at=time.time() if created_at is None else created_at,
            updated_at=time.time(),
            question=result.question,
            status=status_of(result),
            lang=result.lang,
            model=result.model,
            mode=result.mode,
            backend=backend,
            source=source,
            settings=settings or {},
            error=result.error,
            steps=list(result.steps),
            step_count=len(result.steps),
            answer=result.answer,
            seconds=result.seconds,
            usage=result.usage,
            stats=stats_of(result),
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON export: everything stored about the chain (and its direct answer)."""
        usage = self.total_usage
        out: dict[str, Any] = {
            "id": self.id,
            "conversation": self.conversation or self.id,
            "created_at": _iso(self.created_at),
            "question": self.question,
            "status": self.status,
            "lang": self.lang,
            "model": self.model,
            "mode": self.mode,
            "backend": self.backend,
            "source": self.source,
            "settings": self.settings,
            "steps": [step.to_dict() for step in self.steps],
            "answer": self.answer.text if self.answer else None,
            "final": self.answer.to_dict() if self.answer else None,
            "error": self.error.to_dict() if self.error else None,
            "seconds": round(self.thinking_seconds, 4),
            "usage": usage.to_dict(),
            **self.stats,
        }
        if self.paired is not None:
            out["direct"] = self.paired.to_dict()
        return out


def status_of(result: ChainResult) -> str:
    if result.error is not None:
        return result.error.kind
    return COMPLETED if result.answer is not None else INTERRUPTED


def stats_of(result: ChainResult) -> dict[str, Any]:
    return {
        "repeated_steps": result.repeated_steps,
        "degenerate_outputs": result.degenerate_outputs,
        "hit_step_limit": result.hit_step_limit,
        "retries": result.retries,
    }


def _iso(timestamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(timestamp))
