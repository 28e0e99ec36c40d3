"""Evaluation modes: every chain mode is a mode of the evaluation without code changes."""

from __future__ import annotations

import re

import pytest

from thinkchain import ChainSettings
from thinkchain.chain.settings import MODES
from thinkchain.eval.modes import mode_names, parse_mode, parse_modes


@pytest.mark.parametrize(
    ("text", "strategy", "chain_mode", "verify"),
    [
        ("direct", "chain", "direct", False),
        ("cot", "chain", "cot", False),
        ("chain", "chain", None, False),
        ("chain:cot", "chain", "cot", False),
        ("sc", "sc", None, False),
        ("sc:direct", "sc", "direct", False),
        ("chain+verify", "chain", None, True),
        ("chain:iterative+verify", "chain", "iterative", True),
        ("sc+verify", "sc", None, True),
        ("cot+verify", "chain", "cot", True),
        (" Chain ", "chain", None, False),
    ],
)
def test_parse_mode(text: str, strategy: str, chain_mode: str | None, verify: bool) -> None:
    mode = parse_mode(text)
    assert (mode.strategy, mode.chain_mode, mode.verify) == (strategy, chain_mode, verify)
    assert mode.name == text.strip().lower()


def test_every_chain_mode_is_an_eval_mode() -> None:
    for chain_mode in MODES:
        for prefix in ("chain", "sc"):
            mode = parse_mode(f"{prefix}:{chain_mode}")
            assert mode.settings(ChainSettings()).mode == chain_mode
        assert f"chain:{chain_mode}" in mode_names()


def test_verify_turns_on_the_chains_verification_phase() -> None:
    base = ChainSettings()
    assert not base.verify
    assert parse_mode("chain+verify").settings(base).verify
    assert parse_mode("sc:cot+verify").settings(base).mode == "cot"
    assert not parse_mode("chain").settings(base).verify


def test_chain_keeps_the_default_mode_and_other_settings() -> None:
    base = ChainSettings(temperature=0.5, max_steps=7, min_steps=2)
    assert parse_mode("chain").settings(base) is base
    cot = parse_mode("cot").settings(base)
    assert (cot.mode, cot.temperature, cot.max_steps) == ("cot", 0.5, 7)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("magic", "unknown mode 'magic'"),
        ("chain:magic", "unknown mode 'chain:magic'"),
        ("chain+check", "the suffixes are +python, +verify"),
        ("chain+python+python", "the suffixes are +python, +verify"),
    ],
)
def test_unknown_modes_are_refused_with_the_valid_ones(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_mode(text)


def test_python_suffix_turns_code_steps_on_with_or_without_verification() -> None:
    base = ChainSettings()
    plain = parse_mode("chain").settings(base)
    coded = parse_mode("chain+python").settings(base)
    both = parse_mode("sc:iterative+python+verify")
    assert plain.tools == () and coded.tools == ("python",)
    assert (both.strategy, both.chain_mode, both.verify, both.python) == (
        "sc",
        "iterative",
        True,
        True,
    )
    assert both.settings(base).tools == ("python",) and both.settings(base).verify


def test_parse_modes_keeps_order_and_drops_duplicates() -> None:
    assert [m.name for m in parse_modes("direct,cot, chain,sc,cot")] == [
        "direct",
        "cot",
        "chain",
        "sc",
    ]
    with pytest.raises(ValueError, match="no mode given"):
        parse_modes(" , ")
