"""``thinkchain models``: list, pull, locate, verify and remove the embedded models."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from .. import models as registry
from .common import clear_errors, download_progress, err_console, fail

models_app = typer.Typer(help="Manage the embedded models.", no_args_is_help=True)


def _size(n: int) -> str:
    return f"{n / 1024**3:.2f} GiB" if n >= 1024**3 else f"{n / 1024**2:.0f} MiB"


@models_app.command("list")
def list_models() -> None:
    """The embedded models, whether each is present, its size and where it lives."""
    table = Table(show_edge=False, header_style="bold")
    for column in ("name", "aliases", "present", "size", "path"):
        table.add_column(column)
    for model in registry.EMBEDDED:
        path = registry.path_of(model)
        present = registry.is_present(model)
        if not present and path.exists():
            state = "unverified"
        else:
            state = "yes" if present else "no"
        table.add_row(model.name, ", ".join(model.aliases), state, _size(model.size), str(path))
    from rich.console import Console

    Console().print(table)


@models_app.command("pull")
def pull(
    name: Annotated[str, typer.Argument(help="default, small, or a full name.")] = "default",
) -> None:
    """Download, assemble and verify an embedded model (once; later calls do nothing)."""
    with clear_errors():
        model = registry.find(name)
        if registry.is_present(model):
            err_console.print(f"{model.name} is already present")
            typer.echo(str(registry.path_of(model)))
            return
        progress, update = download_progress()
        try:
            path = registry.pull(model, progress=update)
        finally:
            if progress.live.is_started:
                progress.stop()
        err_console.print(f"[green]verified[/] {model.name} ({_size(model.size)})", markup=True)
        typer.echo(str(path))


@models_app.command("path")
def path(name: Annotated[str, typer.Argument()] = "default") -> None:
    """Print where a model's file is (exit 1 if it is not downloaded)."""
    with clear_errors():
        model = registry.find(name)
        typer.echo(str(registry.path_of(model)))
        if not registry.path_of(model).exists():
            raise typer.Exit(1)


@models_app.command("verify")
def verify(name: Annotated[str, typer.Argument()] = "default") -> None:
    """Hash the model file again and compare size and SHA-256."""
    with clear_errors():
        model = registry.find(name)
        if not registry.verify(model):
            fail(
                f"{model.name} does not match its checksum: run `thinkchain models rm "
                f"{model.aliases[0]}` and pull it again",
                code=1,
            )
        err_console.print(f"[green]ok[/] {model.name} matches its SHA-256", markup=True)


@models_app.command("rm")
def rm(name: Annotated[str, typer.Argument()]) -> None:
    """Delete a downloaded model."""
    with clear_errors():
        model = registry.find(name)
        if registry.remove(model):
            err_console.print(f"removed {model.name}")
        else:
            err_console.print(f"{model.name} was not downloaded")
