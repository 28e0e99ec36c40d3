"""``thinkchain ui``: start the web page (Streamlit) on the embedded model or a server."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from thinkchain.chain.settings import DEFAULT_MODE, ENV_MODE, MODES
from thinkchain.cli.history_cmd import HistoryOpt
from thinkchain.cli.options import (
    ApiKeyOpt,
    BaseUrlOpt,
    ModelOpt,
    ModelPathOpt,
    backend_from_options,
    clear_errors,
    err_console,
    fail,
)
from thinkchain.history.store import ENV_HISTORY
from thinkchain.models.backends.factory import ENV_API_KEY, ENV_BASE_URL, ENV_MODEL
from thinkchain.models.embedded import ENV_MODEL_PATH
from thinkchain.models.prefixes import prepare_in_background
from thinkchain.ui.backend_choice import ENV_DEMO, PAGE_PARALLEL, page_tools

PAGE = Path(__file__).resolve().parent.parent / "ui" / "page.py"


def ui(
    port: Annotated[int, typer.Option(help="Port of the web page.")] = 8501,
    host: Annotated[
        str, typer.Option(help="Address to listen on (0.0.0.0 for every interface).")
    ] = "127.0.0.1",
    base_url: BaseUrlOpt = None,
    model: ModelOpt = None,
    api_key: ApiKeyOpt = None,
    model_path: ModelPathOpt = None,
    demo: Annotated[
        bool, typer.Option("--demo", help="Start on a scripted demo model (no model needed).")
    ] = False,
    history: HistoryOpt = None,
    mode: Annotated[
        str,
        typer.Option(
            help="The mode the page starts with: " + ", ".join(MODES) + ".", envvar=ENV_MODE
        ),
    ] = DEFAULT_MODE,
) -> None:
    """Start the web page: ask a question, watch each step as the model writes it."""
    if mode not in MODES:
        fail(f"unknown mode {mode!r}: use one of {', '.join(MODES)}")
    # The page reads its starting values from the same variables the other commands honour.
    for name, value in (
        (ENV_BASE_URL, ",".join(base_url or ())),
        (ENV_MODEL, model),
        (ENV_API_KEY, api_key),
        (ENV_MODEL_PATH, model_path),
        (ENV_HISTORY, history),
        (ENV_DEMO, "1" if demo else None),
        (ENV_MODE, mode),
    ):
        if value:
            os.environ[name] = value
    if not demo and not base_url:
        # Fetch (once) and load the embedded model now: errors show here, in the terminal,
        # and the page finds the model already in memory (it is kept once per process).
        with clear_errors():
            backend = backend_from_options(None, model, None, model_path, parallel=PAGE_PARALLEL)
        # Its prompt prefixes are loaded (or evaluated) in the background before the first
        # question, while Streamlit starts.
        prepare_in_background(backend, page_tools)
    try:
        from streamlit.web import cli as streamlit_cli
    except ImportError:
        fail("the web page needs Streamlit: pip install 'thinkchain[ui]'")
    err_console.print(f"thinkchain web page on http://{host}:{port}  (Ctrl-C to stop)")

    sys.argv = [
        "streamlit",
        "run",
        str(PAGE),
        "--server.port",
        str(port),
        "--server.address",
        host,
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
        "--global.developmentMode",
        "false",
        "--client.toolbarMode",
        "minimal",
    ]
    sys.exit(streamlit_cli.main())
