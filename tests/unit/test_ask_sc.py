"""``thinkchain ask --strategy sc``: each sample's answer, the vote, the winning chain."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from thinkchain import ChainSettings
from thinkchain.chain.backend import GenerationRequest
from thinkchain.chain.settings import StrategySettings
from thinkchain.chain.strategies import make_run
from thinkchain.cli import app
from thinkchain.cli.ask import ask_run
from thinkchain.models.backends.scripted import ScriptedBackend, step_json

SETTINGS = ChainSettings(mode="iterative", min_steps=1, retry_base_delay=0.0, retry_max_delay=0.0)


def ask_self_consistency(backend, settings, question, *, k, quiet=False, as_json=False):
    """``thinkchain ask --strategy sc --k K`` once its options are read; exits 1 without a
    winner, as the command does."""
    run = make_run(backend, settings, StrategySettings(strategy="sc", k=k))
    result = ask_run(run, question, quiet=quiet, as_json=as_json)
    if result.error is not None:
        raise typer.Exit(1)


def split_vote(request: GenerationRequest) -> str:
    """Samples 0 and 2 count three r; sample 1 counts two."""
    if request.purpose == "answer":
        return f"There are **{2 if request.seed == 1 else 3}** letters r (sample {request.seed})."
    return step_json("Spell it", f"s-t-r-a-w-b-e-r-r-y, sample {request.seed}", "final_answer")


def test_each_answer_then_the_vote_then_the_winning_chain(capsys) -> None:
    backend = ScriptedBackend([split_vote], repeat_last=True)
    ask_self_consistency(backend, SETTINGS, "How many r in strawberry?", k=3)
    out, err = capsys.readouterr()
    # Every sample's answer is shown...
    for n, key in ((1, "3"), (2, "2"), (3, "3")):
        assert f"sample {n}/3: {key}" in err
    # ...then the vote...
    assert "vote: 3 ×2, 2 ×1 → 3 (2 of 3 samples)" in err
    # ...then the winning chain's steps, and its answer alone on stdout.
    assert "Winning chain: sample 1" in err
    assert "Step 1: Spell it" in err and "sample 0" in err
    assert out == "There are **3** letters r (sample 0).\n"


def test_quiet_prints_only_the_answer(capsys) -> None:
    backend = ScriptedBackend([split_vote], repeat_last=True)
    ask_self_consistency(backend, SETTINGS, "How many r?", k=3, quiet=True)
    out, err = capsys.readouterr()
    assert out == "There are **3** letters r (sample 0).\n"
    assert "sample" not in err


def test_json_has_every_sample_and_the_vote(capsys) -> None:
    backend = ScriptedBackend([split_vote], repeat_last=True)
    ask_self_consistency(backend, SETTINGS, "How many r?", k=3, as_json=True, quiet=True)
    data = json.loads(capsys.readouterr().out)
    assert data["vote"] == {"winner": "3", "counts": {"3": 2, "2": 1}, "voters": 3}
    assert data["answer_keys"] == ["3", "2", "3"] and len(data["samples"]) == 3


def test_no_readable_answer_exits_1(capsys) -> None:
    def vague(request: GenerationRequest) -> str:
        if request.purpose == "answer":
            return "It is hard to say."
        return step_json("Think", "Hmm.", "final_answer")

    with pytest.raises(typer.Exit) as exit_info:
        ask_self_consistency(ScriptedBackend([vague], repeat_last=True), SETTINGS, "q?", k=2)
    assert exit_info.value.exit_code == 1
    assert "no readable answer" in capsys.readouterr().err


def test_the_command_line() -> None:
    result = CliRunner().invoke(
        app,
        ["ask", "--demo", "--strategy", "sc", "--k", "3", "How many r in strawberry?"],
    )
    assert result.exit_code == 0, result.output
    assert "sample 1/3: 3" in result.output and "vote: 3 ×" in result.output
    assert "There are **3** letters r" in result.output


def test_a_wrong_strategy_is_one_line() -> None:
    result = CliRunner().invoke(app, ["ask", "--demo", "--strategy", "vote", "q?"])
    assert result.exit_code == 2
    assert "--strategy must be chain, sc, both" in result.output
