"""``thinkchain ask``: one question, reasoning shown live, the answer on stdout."""

from __future__ import annotations

import json
import sys
import threading
from typing import Annotated

import typer
from rich.text import Text

from thinkchain.chain.cancel import CancelToken
from thinkchain.chain.events import ChainCompleted, ChainFailed, ChainResult
from thinkchain.chain.questions import InvalidQuestion, clean_question
from thinkchain.chain.settings import (
    ENV_MODE,
    MODES,
    STRATEGIES,
    ChainSettings,
    StrategySettings,
    auto_tools,
    parse_tools,
)
from thinkchain.chain.strategies import Run, chains_at_once, make_run
from thinkchain.cli.history_cmd import HistoryOpt
from thinkchain.cli.interrupt import ctrl_c_cancels
from thinkchain.cli.options import (
    CHAIN_DEFAULTS,
    STRATEGY_DEFAULTS,
    ApiKeyOpt,
    BaseUrlOpt,
    LangOpt,
    MaxStepsOpt,
    MaxTokensOpt,
    MinStepsOpt,
    ModelOpt,
    ModelPathOpt,
    TemperatureOpt,
    backend_from_options,
    clear_errors,
    err_console,
    fail,
)
from thinkchain.cli.render import TerminalView
from thinkchain.history import ChainRecorder


def ask(
    question: Annotated[str, typer.Argument(help="The question; '-' reads it from stdin.")],
    base_url: BaseUrlOpt = None,
    model: ModelOpt = None,
    api_key: ApiKeyOpt = None,
    model_path: ModelPathOpt = None,
    lang: LangOpt = CHAIN_DEFAULTS.lang,
    mode: Annotated[
        str,
        typer.Option(help="How the model thinks: " + ", ".join(MODES) + ".", envvar=ENV_MODE),
    ] = CHAIN_DEFAULTS.mode,
    max_steps: MaxStepsOpt = CHAIN_DEFAULTS.max_steps,
    min_steps: MinStepsOpt = CHAIN_DEFAULTS.min_steps,
    temperature: TemperatureOpt = CHAIN_DEFAULTS.temperature,
    max_tokens: MaxTokensOpt = CHAIN_DEFAULTS.max_tokens_per_step,
    max_total_tokens: Annotated[
        int | None, typer.Option(help="Budget of generated tokens for the whole chain.")
    ] = None,
    max_seconds: Annotated[
        float | None, typer.Option(help="Budget of wall time for the whole chain.")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Sampling seed.")] = None,
    tools: Annotated[
        str,
        typer.Option(
            help="Tools the steps may use: 'python' runs the model's Python blocks in the "
            "sandbox and shows their output (code steps); 'none'; 'auto': python on the "
            "embedded model where the sandbox can isolate code, none on a server.",
            envvar="THINKCHAIN_TOOLS",
        ),
    ] = "auto",
    strategy: Annotated[
        str,
        typer.Option(
            help="chain; sc: K chains and a majority vote (self-consistency); both: a program "
            "and prose side by side, more of both only while they disagree (at most K)."
        ),
    ] = STRATEGY_DEFAULTS.strategy,
    k: Annotated[
        int, typer.Option("--k", help="Chains of --strategy sc; the most chains of both.")
    ] = STRATEGY_DEFAULTS.k,
    timeout: Annotated[
        float, typer.Option(help="Seconds to wait for a server between two tokens.")
    ] = 120.0,
    connect_timeout: Annotated[
        float, typer.Option(help="Seconds to wait for a server to accept the connection.")
    ] = 10.0,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON document with everything.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Do not show the steps.")] = False,
    demo: Annotated[
        bool, typer.Option("--demo", help="Use a scripted demo model (no model needed).")
    ] = False,
    history: HistoryOpt = None,
    no_history: Annotated[
        bool, typer.Option("--no-history", help="Do not keep this chain in the history.")
    ] = False,
) -> None:
    """Ask a question; the model reasons in visible steps, then answers."""
    if question == "-":
        question = sys.stdin.read()
    auto = tools.strip().lower() == "auto"  # decided once the backend is known
    with clear_errors():
        settings = ChainSettings(
            mode=mode,
            lang=lang,
            max_steps=max_steps,
            min_steps=min_steps,
            temperature=temperature,
            max_tokens_per_step=max_tokens,
            max_total_tokens=max_total_tokens,
            max_seconds=max_seconds,
            seed=seed,
            tools=() if auto else parse_tools(tools),
        )
        if strategy not in STRATEGIES or k < 1:
            fail(f"--strategy must be {', '.join(STRATEGIES)}, and --k at least 1")
        plan = StrategySettings.model_validate({"strategy": strategy, "k": k})
        try:
            clean_question(question, settings.max_question_chars)
        except InvalidQuestion as err:
            fail(str(err))
        probe = None
        if auto and not base_url and not demo:
            # Whether code steps can be isolated here is probed while the model loads, not
            # after it, on the way to the first step.
            probe = threading.Thread(target=auto_tools, kwargs={"embedded": True}, daemon=True)
            probe.start()
        backend = backend_from_options(
            base_url,
            model,
            api_key,
            model_path,
            demo=demo,
            read_timeout=timeout,
            connect_timeout=connect_timeout,
            parallel=chains_at_once(plan),  # a run's chains decode side by side
        )
        if probe is not None:
            probe.join()
        if auto:
            settings = settings.derive(tools=auto_tools(embedded=not base_url and not demo))
    recorder = None
    if not no_history:
        recorder = ChainRecorder(history, backend=backend.name, source="cli", settings=settings)
    result = ask_run(
        make_run(backend, settings, plan),
        question,
        quiet=quiet,
        as_json=as_json,
        recorder=recorder,
    )
    if result.error is not None:
        raise typer.Exit(130 if result.error.kind == "cancelled" else 1)


def ask_run(
    run: Run,
    question: str,
    *,
    quiet: bool = False,
    as_json: bool = False,
    recorder: ChainRecorder | None = None,
) -> ChainResult:
    """One run in the terminal: shown as it happens (on stderr unless ``quiet``), the answer
    on stdout, or the whole run as one JSON document with ``as_json``."""
    view = TerminalView(show_steps=not quiet, print_answer=not as_json)
    cancel = CancelToken()
    result: ChainResult | None = None
    with ctrl_c_cancels(cancel):
        try:
            for event in run.stream(question, cancel=cancel):
                view.handle(event)
                if recorder is not None:
                    recorder.handle(event)  # each finished step is saved at once
                if isinstance(event, (ChainCompleted, ChainFailed)):
                    result = event.result
        finally:
            view.close()
    assert result is not None
    if recorder is not None:
        recorder.close()
        if recorder.error is not None:
            warning = f"warning: not kept in the history: {recorder.error}"
            err_console.print(Text(warning, style="yellow"), soft_wrap=True)
    if as_json:
        sys.stdout.write(json.dumps(result.to_dict(), ensure_ascii=False, indent=2) + "\n")
    return result
