"""Evaluation modes: how one question is put to the model.

Every chain mode of :data:`thinkchain.chain.settings.MODES` is an evaluation mode without code
changes here:

* ``direct``, ``cot``           the one-call baselines (``ChainSettings(mode=...)``);
* ``chain``                     a chain with the default settings' mode;
* ``chain:MODE``                a chain in any mode of ``MODES``;
* ``sc`` / ``sc:MODE``          self-consistency: K chains of that mode, majority vote;
* ``+verify`` after any mode     the chain's verification phase (``ChainSettings.verify``):
  solve again another way, revise the answer on disagreement (``chain+verify``, ...);
* ``+python`` after any mode     code steps (``ChainSettings.tools``): the model may run Python
  in the sandbox while it reasons (``chain+python``, ``sc+python``, ``chain+python+verify``).
"""

from __future__ import annotations

from dataclasses import dataclass

from thinkchain.chain.settings import MODES, STRATEGIES, ChainSettings

SUFFIXES = ("python", "verify")


@dataclass(frozen=True)
class EvalMode:
    name: str  # as the user wrote it (normalised): the key of its results
    strategy: str  # "chain", or a strategy of settings.STRATEGIES
    chain_mode: str | None  # a ChainSettings mode; None keeps the settings' own mode
    verify: bool = False
    python: bool = False

    def settings(self, base: ChainSettings) -> ChainSettings:
        """``base`` with this mode's chain mode, and verification when the mode asks for it."""
        update: dict[str, object] = {}
        if self.chain_mode is not None and self.chain_mode != base.mode:
            update["mode"] = self.chain_mode
        if self.verify and not base.verify:
            update["verify"] = True
        if self.python and "python" not in base.tools:
            update["tools"] = (*base.tools, "python")
        if not update:
            return base
        return base.derive(**update)


def mode_names() -> list[str]:
    """Every name :func:`parse_mode` accepts, for help texts and error messages."""
    runs = [f"{strategy}:{m}" for strategy in STRATEGIES for m in MODES]
    return ["direct", "cot", *STRATEGIES, *runs, "MODE+python", "MODE+verify"]


def parse_mode(text: str) -> EvalMode:
    name = text.strip().lower()
    base, *suffixes = name.split("+")
    unknown = [s for s in suffixes if s not in SUFFIXES]
    if unknown or len(set(suffixes)) < len(suffixes):
        raise ValueError(
            f"unknown mode {text!r}: the suffixes are {', '.join('+' + s for s in SUFFIXES)}"
        )
    strategy, _, chain_mode = base.partition(":")
    if strategy in MODES and not chain_mode:  # "direct", "cot": the one-call baselines
        strategy, chain_mode = "chain", base
    if strategy not in STRATEGIES or (chain_mode and chain_mode not in MODES):
        raise ValueError(f"unknown mode {text!r}: use {', '.join(mode_names())}")
    return EvalMode(
        name,
        strategy,
        chain_mode or None,
        verify="verify" in suffixes,
        python="python" in suffixes,
    )


def parse_modes(text: str) -> list[EvalMode]:
    """``"direct,cot,chain,sc"`` -> modes, in order, without duplicates."""
    modes: list[EvalMode] = []
    for part in text.split(","):
        if part.strip():
            mode = parse_mode(part)
            if mode.name not in {m.name for m in modes}:
                modes.append(mode)
    if not modes:
        raise ValueError("no mode given: use e.g. --modes direct,cot,chain,sc")
    return modes
