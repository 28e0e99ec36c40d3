"""What the subcommands share: backend options, settings errors, one-line failures."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from thinkchain.chain.backend import Backend, BackendError
from thinkchain.chain.settings import ChainSettings, StrategySettings
from thinkchain.models.backends.factory import (
    ENV_API_KEY,
    ENV_BASE_URL,
    ENV_MODEL,
    BackendConfig,
    make_backend,
)
from thinkchain.models.embedded import ENV_MODEL_PATH, ModelError

err_console = Console(stderr=True, highlight=False)
# Every command's defaults are the settings' own, read once here.
CHAIN_DEFAULTS = ChainSettings()
STRATEGY_DEFAULTS = StrategySettings()

BaseUrlOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--base-url",
        envvar=ENV_BASE_URL,
        help="OpenAI-compatible server(s), e.g. http://localhost:8000/v1; repeat or comma-separate "
        "for several. Without it the embedded model runs in-process.",
        show_default=False,
    ),
]
ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model",
        envvar=ENV_MODEL,
        help="Model name on the server, or an embedded model (default, small).",
        show_default=False,
    ),
]
ApiKeyOpt = Annotated[
    str | None,
    typer.Option(
        "--api-key", envvar=ENV_API_KEY, help="API key for the server.", show_default=False
    ),
]
ModelPathOpt = Annotated[
    str | None,
    typer.Option(
        "--model-path",
        envvar=ENV_MODEL_PATH,
        help="A GGUF file to run in-process instead of the embedded default.",
        show_default=False,
    ),
]


# The options of a chain's settings, shared by the commands that run chains.
LangOpt = Annotated[str, typer.Option(help="Prompt language: auto, zh or en.")]
MaxStepsOpt = Annotated[int, typer.Option(help="At most this many steps.")]
MinStepsOpt = Annotated[int, typer.Option(help="At least this many steps.")]
TemperatureOpt = Annotated[float, typer.Option(help="Sampling temperature.")]
MaxTokensOpt = Annotated[int, typer.Option(help="Max tokens per step.")]


def fail(message: str, code: int = 2) -> NoReturn:
    # Escaped: messages quote user input and install hints like 'thinkchain[vllm]', which
    # rich would otherwise take for markup and drop.
    err_console.print(
        f"[bold red]error:[/] {escape(message)}", markup=True, highlight=False, soft_wrap=True
    )
    raise typer.Exit(code)


def describe_validation(err: ValidationError) -> str:
    parts = []
    for item in err.errors():
        where = ".".join(str(p) for p in item.get("loc", ())) or "settings"
        parts.append(f"{where.replace('_', '-')}: {item.get('msg')}")
    return "; ".join(parts)


@contextmanager
def clear_errors() -> Iterator[None]:
    """Turn the errors users can cause into one clear line and a non-zero exit."""
    try:
        yield
    except ValidationError as err:
        fail(describe_validation(err))
    except (ModelError, BackendError) as err:
        fail(str(err))
    except ValueError as err:
        fail(str(err))


def download_progress() -> tuple[Progress, Callable[[int, int], None]]:
    progress = Progress(
        TextColumn("[bold]fetching model"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    )
    task = progress.add_task("model", total=None)

    def update(done: int, total: int) -> None:
        if not progress.live.is_started:
            progress.start()
        progress.update(task, completed=done, total=total)

    return progress, update


def backend_from_options(
    base_url: list[str] | None,
    model: str | None,
    api_key: str | None,
    model_path: str | None,
    *,
    demo: bool = False,
    read_timeout: float | None = None,
    connect_timeout: float | None = None,
    parallel: int | None = None,
) -> Backend:
    """The backend the options name.  ``parallel``: how many sequences the embedded model
    should decode together (the caller's concurrency); servers ignore it."""
    config = BackendConfig.from_env(
        base_urls=tuple(base_url or ()),
        model=model,
        api_key=api_key,
        model_path=model_path,
        demo=demo,
        read_timeout=read_timeout,
        connect_timeout=connect_timeout,
        parallel=parallel,
    )
    progress, update = download_progress()
    try:
        if config.kind == "embedded":
            err_console.print("[dim]loading the embedded model…[/]", markup=True)
        return make_backend(config, progress=update)
    finally:
        if progress.live.is_started:
            progress.stop()


def stdout_is_tty() -> bool:
    return sys.stdout.isatty()
