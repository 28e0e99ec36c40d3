"""The ``thinkchain`` command line."""

from __future__ import annotations

import typer

from thinkchain.cli.ask import ask
from thinkchain.cli.eval_cmd import evaluate
from thinkchain.cli.history_cmd import history_app
from thinkchain.cli.models_cmd import models_app
from thinkchain.cli.proxy_cmd import proxy
from thinkchain.cli.serve_cmd import serve
from thinkchain.cli.ui_cmd import ui

app = typer.Typer(
    name="thinkchain",
    help="Make an instruct model reason in visible steps before it answers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command()(ask)
app.command("eval")(evaluate)
app.add_typer(models_app, name="models")
app.command()(serve)
app.command()(proxy)
app.command()(ui)
app.add_typer(history_app, name="history")


def main() -> None:
    app()
