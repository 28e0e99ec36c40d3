"""Responses kept in memory so a later request can go on from one (``previous_response_id``).

Only the conversation is kept: the messages up to and including the response's answer, not
its steps (a follow-up's context is the earlier questions and answers, as in chat).  Bounded
twice, by count and by characters; the least recently used go first.  A response belongs to
the API key that made it: another key cannot read it, and learns no more than that it is not
there.  Nothing survives a restart.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass

# A conversation repeats every earlier turn, so the characters bound the memory, not the count.
DEFAULT_MAX_CHARS = 64_000_000


@dataclass(frozen=True)
class Kept:
    owner: str | None
    conversation: tuple[dict[str, str], ...]

    @property
    def size(self) -> int:
        return sum(len(m["content"]) + 16 for m in self.conversation)


def owner_of(authorization: str | None, keyed: bool) -> str | None:
    """Who made a request: a digest of its bearer key on a server with keys, else nobody."""
    if not keyed:
        return None
    return hashlib.sha256((authorization or "").encode()).hexdigest()


class ResponseStore:
    def __init__(self, max_entries: int, max_chars: int = DEFAULT_MAX_CHARS) -> None:
        self.max_entries = max_entries
        self.max_chars = max_chars
        self._kept: OrderedDict[str, Kept] = OrderedDict()
        self._chars = 0

    def __len__(self) -> int:
        return len(self._kept)

    @property
    def enabled(self) -> bool:
        return self.max_entries > 0

    def get(self, response_id: str, owner: str | None) -> tuple[dict[str, str], ...] | None:
        kept = self._kept.get(response_id)
        if kept is None or kept.owner != owner:
            return None
        self._kept.move_to_end(response_id)
        return kept.conversation

    def put(self, response_id: str, owner: str | None, conversation: list[dict[str, str]]) -> None:
        if not self.enabled:
            return
        kept = Kept(owner, tuple(conversation))
        if kept.size > self.max_chars:
            return  # larger than everything the store may hold: not kept
        self._kept[response_id] = kept
        self._chars += kept.size
        while len(self._kept) > self.max_entries or self._chars > self.max_chars:
            _, dropped = self._kept.popitem(last=False)
            self._chars -= dropped.size
