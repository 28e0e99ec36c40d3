"""The engine's sequences ("slots") and which one a new request reuses the KV cells of.

A slot remembers which tokens its KV cells hold.  A new request goes to the free slot sharing
the longest prefix with its prompt, so a chain's next step (its prompt is the previous prompt
plus the previous reply) evaluates only the new tokens.  When another slot already holds a
longer prefix (the same system prompt and question, for K self-consistency samples), its
cells are shared into the new slot instead of being evaluated again, and a request whose
prefix another slot is still evaluating waits for it.

Pinned slots take no requests: each holds one fixed prompt prefix (a system prompt and its
layout), loaded from disk or evaluated once, and serves only as a donor, so that a chain in
one language or mode does not push out the prefix of another.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from thinkchain.models.backends.engine_request import EngineRequest

# A waiting request takes a slot holding a shorter cached prefix only when the longer one
# is more than this many tokens away: evaluating a few tokens again is cheaper than waiting.
SHARE_MIN_GAIN = 16


@dataclass
class Slot:
    seq_id: int
    tokens: list[int] = field(default_factory=list)  # what the KV cells of this seq hold
    request: EngineRequest | None = None
    pinned: bool = False  # holds a fixed prefix for others to copy; never runs a generation
    used: float = 0.0  # when a pinned prefix last served (least recently used is replaced)


@dataclass(frozen=True)
class Reuse:
    """Where a request goes and how much of its prompt is already evaluated."""

    slot: Slot  # the free slot it takes
    cached: int  # prompt tokens already in KV cells (the slot's own, or the donor's)
    donor: Slot | None  # another slot whose longer prefix is copied into ``slot`` first


def common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    if n == 0:
        return 0
    x = np.asarray(a[:n], dtype=np.int64)
    y = np.asarray(b[:n], dtype=np.int64)
    diff = np.nonzero(x != y)[0]
    return int(diff[0]) if diff.size else n


def plan_reuse(slots: list[Slot], free: list[Slot], tokens: list[int]) -> Reuse | None:
    """The reuse for a prompt of ``tokens`` among ``free`` slots; None: wait, another slot is
    evaluating a longer shared prefix right now."""
    best = max(free, key=lambda s: common_prefix(s.tokens, tokens))
    reuse = common_prefix(best.tokens, tokens)
    donor, donor_len = None, reuse
    for other in slots:
        if other is best:
            continue
        shared = common_prefix(other.tokens, tokens)
        if shared > donor_len + SHARE_MIN_GAIN:
            donor, donor_len = other, shared
    evaluating = max(
        (
            common_prefix(s.tokens + s.request.pending, tokens)
            for s in slots
            # A prefix prepared ahead of time is not worth waiting for unless it is this
            # request's own (the engine has then made it foreground).
            if s.request is not None and s.request.pending and not s.request.background
        ),
        default=0,
    )
    if evaluating > max(reuse, donor_len) + SHARE_MIN_GAIN:
        return None
    return Reuse(best, donor_len, donor)
