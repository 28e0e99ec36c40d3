"""Bad input to `thinkchain ask`: one clear line, a non-zero exit, nothing generated."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from thinkchain.cli import app

runner = CliRunner()


def ask(*args: str):
    return runner.invoke(app, ["ask", "--demo", "--no-history", *args])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            [
                "",
            ],
            "the question is empty",
        ),
        (["   \n\t  "], "the question is empty"),
        (["\x00\x01\x02"], "the question is empty"),
        (["--max-steps", "-1", "q"], "max-steps"),
        (["--max-steps", "100000", "q"], "max-steps"),
        (["--min-steps", "9", "--max-steps", "3", "q"], "min_steps (9) cannot be larger"),
        (["--lang", "fr", "q"], "lang"),
        (["--mode", "telepathy", "q"], "mode"),
        (["--temperature", "-1", "q"], "temperature"),
        (["--max-tokens", "0", "q"], "max-tokens"),
        (["--strategy", "vote", "q"], "--strategy must be chain, sc, both"),
    ],
)
def test_bad_options_and_questions_fail_with_one_clear_line(args, message):
    result = ask(*args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert "Step 1" not in result.output  # nothing was generated


def test_an_oversized_question_is_refused_before_anything_runs():
    result = ask("x" * 40_000)
    assert result.exit_code == 2
    assert "40,000 characters long; the limit is 32,000" in result.output


def test_control_characters_are_dropped_and_the_chain_runs():
    result = ask("How many r in\x07 strawberry\x1b?")
    assert result.exit_code == 0, result.output
    assert "positions 3, 8 and 9" in result.output


def test_question_from_stdin():
    result = runner.invoke(
        app, ["ask", "--demo", "--no-history", "-q", "-"], input="How many r in strawberry?\n"
    )
    assert result.exit_code == 0 and "positions 3, 8 and 9" in result.output


def test_a_server_address_without_a_scheme_is_refused():
    result = runner.invoke(app, ["ask", "--no-history", "--base-url", "localhost:8000", "q"])
    assert result.exit_code == 2 and "not an http(s) URL: 'localhost:8000'" in result.output


def test_unknown_embedded_model_name_is_one_line():
    result = runner.invoke(app, ["ask", "--no-history", "--model", "gpt-17", "q"])
    assert result.exit_code == 2
    assert "unknown embedded model 'gpt-17'" in result.output


def test_the_mode_defaults_to_single_pass_and_follows_the_environment(monkeypatch):
    monkeypatch.delenv("THINKCHAIN_MODE", raising=False)
    default = ask("--json", "How many r in strawberry?")
    assert default.exit_code == 0, default.output
    assert json.loads(default.stdout)["mode"] == "single-pass"

    monkeypatch.setenv("THINKCHAIN_MODE", "iterative")
    chosen = ask("--json", "How many r in strawberry?")
    assert chosen.exit_code == 0, chosen.output
    assert json.loads(chosen.stdout)["mode"] == "iterative"
    assert len(json.loads(chosen.stdout)["steps"]) == 3
