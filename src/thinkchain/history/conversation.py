"""A conversation: the chains asked one after another on the page, each a turn of it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from thinkchain.history.record import ChainRecord


@dataclass
class Conversation:
    id: str  # the id of its first chain
    turns: list[ChainRecord] = field(default_factory=list)  # oldest first

    @property
    def question(self) -> str:
        """What the conversation began with."""
        return self.turns[0].question if self.turns else ""

    @property
    def last(self) -> ChainRecord | None:
        return self.turns[-1] if self.turns else None

    def context(self) -> list[dict[str, str]]:
        """The chat messages a follow-up question is asked after: each earlier question and
        its final answer (not the steps); a turn that ended without an answer leaves none."""
        messages: list[dict[str, str]] = []
        for turn in self.turns:
            if turn.answer is not None:
                messages.append({"role": "user", "content": turn.question})
                messages.append({"role": "assistant", "content": turn.answer.text})
        return messages

    def to_dict(self) -> dict[str, Any]:
        return {"conversation": self.id, "turns": [turn.to_dict() for turn in self.turns]}
