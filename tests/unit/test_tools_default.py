"""Which tools a chain gets: what the user names, else code steps on the embedded model only."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import thinkchain.sandbox as sandbox
from thinkchain.chain.settings import auto_tools, parse_tools
from thinkchain.cli import app

runner = CliRunner()
QUESTION = "How many letters r are in the word strawberry?"


class Unsafe:
    safe = False


def test_code_steps_are_the_default_on_the_embedded_model_only():
    assert auto_tools(embedded=False) == ()
    assert auto_tools(embedded=True) == (("python",) if sandbox.isolation_report().safe else ())


def test_no_code_steps_by_default_where_the_sandbox_cannot_isolate_code(monkeypatch):
    monkeypatch.setattr(sandbox, "isolation_report", lambda method="auto": Unsafe())
    assert auto_tools(embedded=True) == ()


@pytest.mark.parametrize(
    ("text", "tools"),
    [("python", ("python",)), ("", ()), ("none", ()), ("Python, python", ("python",))],
)
def test_parse_tools(text, tools):
    assert parse_tools(text) == tools


def test_an_unknown_tool_is_one_clear_line():
    result = runner.invoke(app, ["ask", "--demo", "--no-history", "--tools", "bash", QUESTION])
    assert result.exit_code == 2
    assert "unknown tool 'bash': the tools are python" in result.output


def test_ask_runs_code_steps_when_asked_and_not_on_the_demo_by_default():
    def steps(*args: str) -> list[dict]:
        result = runner.invoke(app, ["ask", "--demo", "--no-history", "--json", *args, QUESTION])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)["steps"]

    assert not any(step.get("runs") for step in steps())
    coded = steps("--tools", "python")
    assert coded[0]["runs"][0]["output"].strip() == "3"
