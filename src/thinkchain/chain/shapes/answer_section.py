"""The answer section of a single-pass reply while it streams: its text, tokens and timing."""

from __future__ import annotations

from dataclasses import dataclass, field
from time import perf_counter

from thinkchain.chain.events import FinalAnswer, Usage


@dataclass
class AnswerSection:
    started: float = field(default_factory=perf_counter)
    parts: list[str] = field(default_factory=list)
    tokens: int = 0  # chunks received: one token each for llama.cpp, about one for servers
    ttft: float | None = None
    # The reply's prompt tokens, when the reply produced no step to carry them.
    prompt: Usage = field(default_factory=Usage)

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def count_token(self) -> None:
        self.tokens += 1
        if self.ttft is None:
            self.ttft = perf_counter() - self.started

    def spent(self) -> Usage:
        """What the section cost, for when it is thrown away."""
        return Usage(completion_tokens=self.tokens, estimated=True) + self.prompt

    def final(self) -> FinalAnswer:
        return FinalAnswer(
            text=self.text.strip(),
            seconds=perf_counter() - self.started,
            ttft=self.ttft,
            usage=Usage(completion_tokens=self.tokens) + self.prompt,
        )
