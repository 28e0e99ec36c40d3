"""Strategies: a run of several chains and a decision, in the same protocol as one chain.

A run of one chain is a :class:`~thinkchain.chain.loop.Chain`.  A strategy runs several chains
for the same question and decides between them; it speaks the same protocol, so no consumer
knows which strategy ran:

* ``RunStarted`` first (the strategy, how many chains it may start);
* each chain's events as they happen, wrapped in ``InChain(chain, event)``;
* ``ChainRead`` when a chain ends (the strategy's reading of its answer);
* ``Decided`` with the :class:`~thinkchain.chain.results.Decision`;
* then, as for a chain, one ``ChainCompleted``/``ChainFailed`` whose result is the chosen
  chain's, with every chain (``result.chains``) and the decision (``result.decision``).

:func:`make_run` builds the run a :class:`~thinkchain.chain.settings.StrategySettings` asks for;
every face calls it.  Two strategies vote over the chains' normalised answers (answers.py):

* **self-consistency** (``sc``) samples K chains of one kind and takes the majority;
* **both ways** (``both``) asks a prose chain and a code chain side by side: a program and
  prose fail on different questions, so when the two reach the same answer it is very likely
  right; only when they disagree are more samples of both kinds drawn, one at a time, until one
  answer leads.

A tie is never settled by which chain finished first: another sample is drawn while the budget
allows; a tie left when it is spent goes to the answer of the lowest-numbered chain (the first
of the pair, for ``both``: the program).

Chains run concurrently where the backend serves several sequences at once (a batching
server, or the embedded engine with slots); on a backend that serves one at a time they run one
after another, each finding the shared prefix already in the KV cache.
"""

from __future__ import annotations

from collections.abc import Sequence

from thinkchain.chain import loop as chain_module
from thinkchain.chain.answers import Expect, decided
from thinkchain.chain.backend import Backend
from thinkchain.chain.settings import ChainSettings, EarlyStop, StrategySettings
from thinkchain.chain.voting import Voting, leader


class SelfConsistency(Voting):
    """K chains, one vote.  ``temperature`` overrides the chain's, so samples differ.

    Early stopping: as soon as the leading answer can no longer be overtaken by the samples
    still to come, the rest are cancelled ("decisive"); "agree" stops as soon as the first
    ``agree_n`` answers are the same.  When samples run concurrently, early stopping starts
    them in two waves: first just enough samples to decide the vote on their own, then the
    rest only if those disagreed.  A tie after K samples draws up to ``tie_breaks`` more.
    """

    name = "sc"

    def __init__(
        self,
        backend: Backend,
        settings: ChainSettings | None = None,
        *,
        k: int = 5,
        temperature: float | None = StrategySettings().temperature,
        early_stop: EarlyStop = "decisive",
        agree_n: int = 3,
        tie_breaks: int = StrategySettings().tie_breaks,
        parallel: bool | None = None,
        expect: Expect = None,
    ) -> None:
        # The same rules as StrategySettings, for callers of the Python API.
        checked = StrategySettings(
            strategy="sc",
            k=k,
            temperature=temperature,
            early_stop=early_stop,
            agree_n=agree_n,
            tie_breaks=tie_breaks,
        )
        super().__init__(
            backend, settings, budget=k + checked.tie_breaks, parallel=parallel, expect=expect
        )
        self.k = self.planned = k
        self.early_stop = checked.early_stop
        self.agree_n = checked.agree_n
        base_seed = self.settings.seed if self.settings.seed is not None else 0
        update = {} if checked.temperature is None else {"temperature": checked.temperature}
        # Each sample gets its own seed: reproducible, and different from its siblings.
        self._sample_settings = [
            self.settings.derive(**update, seed=base_seed + i) for i in range(self.budget)
        ]

    def chain_settings(self, index: int) -> ChainSettings:
        return self._sample_settings[index]

    def role(self, index: int) -> str:
        return "sample"

    def _first_wave(self) -> int:
        """Samples started together before looking at their answers."""
        if self.early_stop == "agree":
            return min(self.k, self.agree_n)
        if self.early_stop == "decisive":
            return min(self.k, self.k // 2 + 1)  # the smallest number that can decide alone
        return self.k

    def next_batch(self, started: int, keys: dict[int, str | None]) -> list[int]:
        if started < self.k:
            if not self.parallel:
                return [started]
            end = self._first_wave() if started == 0 else self.k
            return list(range(started, end))
        # Every planned sample has answered: a tie at the top is settled by another one.
        read = [keys.get(i) for i in range(started)]
        if started < self.budget and any(read) and leader(read) is None:
            return [started]
        return []

    def settled(self, keys_in_order: list[str | None]) -> bool:
        if self.early_stop == "off" or len(keys_in_order) >= self.k:
            return False
        if self.early_stop == "agree":
            first = keys_in_order[: self.agree_n]
            if len(first) == self.agree_n and first[0] is not None and len(set(first)) == 1:
                return True
        return decided(keys_in_order, self.k)

    def unstarted(self, ran: int) -> int:
        return max(0, self.k - ran)


class BothWays(Voting):
    """A prose chain and a code chain for the same question, side by side; more of both,
    one at a time, only while their answers disagree (at most ``budget`` chains in all).

    Chain 0 is the program (code steps on), chain 1 the prose (no code), both at the chain's
    own temperature; the chains after them alternate program and prose, sampled at
    ``temperature`` with their own seeds.  The run is decided once one answer is given by
    more chains than any other and by at least two of them.
    """

    name = "both"

    def __init__(
        self,
        backend: Backend,
        settings: ChainSettings | None = None,
        *,
        budget: int = StrategySettings().k,
        temperature: float | None = StrategySettings().temperature,
        parallel: bool | None = None,
        expect: Expect = None,
    ) -> None:
        checked = StrategySettings(strategy="both", k=budget, temperature=temperature)
        if checked.k < 2:
            raise ValueError("both ways needs a budget of at least 2 chains")
        super().__init__(backend, settings, budget=checked.k, parallel=parallel, expect=expect)
        base = self.settings
        seed = base.seed if base.seed is not None else 0
        code = base.derive(tools=tuple(dict.fromkeys((*base.tools, "python"))))
        prose = base.derive(tools=tuple(t for t in base.tools if t != "python"))
        sampled = {} if checked.temperature is None else {"temperature": checked.temperature}
        self._settings = [code, prose] + [
            (code if i % 2 == 0 else prose).derive(**sampled, seed=seed + i)
            for i in range(2, self.budget)
        ]

    def chain_settings(self, index: int) -> ChainSettings:
        return self._settings[index]

    def role(self, index: int) -> str:
        return "program" if index % 2 == 0 else "prose"

    def next_batch(self, started: int, keys: dict[int, str | None]) -> list[int]:
        if started == 0:
            return [0, 1]  # the pair decodes side by side
        if started >= self.budget or self._decided([keys.get(i) for i in range(started)]):
            return []
        return [started]

    @staticmethod
    def _decided(keys: Sequence[str | None]) -> bool:
        top = leader(keys)
        return top is not None and sum(1 for k in keys if k == top) >= 2


Run = chain_module.Chain | SelfConsistency | BothWays


def chains_at_once(strategy: StrategySettings) -> int:
    """How many chains of one run a backend with slots should decode side by side."""
    if strategy.strategy == "chain":
        return 1
    if strategy.strategy == "both":
        return 2  # the pair; the rest come one at a time
    return strategy.k


def make_run(
    backend: Backend,
    settings: ChainSettings,
    strategy: StrategySettings | None = None,
    *,
    expect: Expect = None,
) -> Run:
    """The run ``strategy`` asks for over ``backend``: one chain, or a strategy's chains."""
    strategy = strategy or StrategySettings()
    if strategy.strategy == "chain":
        # Looked up where it is defined, so that a test may stand in its own chain there.
        return chain_module.Chain(backend, settings)
    if strategy.strategy == "both":
        return BothWays(
            backend, settings, budget=strategy.k, temperature=strategy.temperature, expect=expect
        )
    return SelfConsistency(
        backend,
        settings,
        k=strategy.k,
        temperature=strategy.temperature,
        early_stop=strategy.early_stop,
        agree_n=strategy.agree_n,
        tie_breaks=strategy.tie_breaks,
        expect=expect,
    )
