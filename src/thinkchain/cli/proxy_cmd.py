"""``thinkchain proxy``: serve the OpenAI chat-completions and Responses APIs with reasoning
variants."""

from __future__ import annotations

from typing import Annotated

import typer
from pydantic import SecretStr

from thinkchain.chain.settings import ChainSettings, parse_tools
from thinkchain.cli.options import (
    CHAIN_DEFAULTS,
    STRATEGY_DEFAULTS,
    ModelOpt,
    ModelPathOpt,
    backend_from_options,
    clear_errors,
    err_console,
    fail,
)
from thinkchain.proxy.proxy_settings import ProxySettings

PROXY_DEFAULTS = ProxySettings()


def proxy(
    upstream: Annotated[
        list[str] | None,
        typer.Option(
            "--upstream",
            envvar="THINKCHAIN_UPSTREAM",
            help="OpenAI-compatible server(s) to put the proxy in front of, e.g. "
            "http://localhost:8000/v1; repeat or comma-separate for several. Without it the "
            "embedded model is served.",
            show_default=False,
        ),
    ] = None,
    model: ModelOpt = None,
    model_path: ModelPathOpt = None,
    demo: Annotated[
        bool, typer.Option("--demo", help="Serve a scripted demo model (no model needed).")
    ] = False,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8100,
    api_key: Annotated[
        list[str] | None,
        typer.Option(
            "--api-key",
            envvar="THINKCHAIN_PROXY_API_KEY",
            help="A key clients must send as 'Authorization: Bearer KEY'; repeat for several.",
            show_default=False,
        ),
    ] = None,
    api_keys_file: Annotated[
        str | None,
        typer.Option(
            "--api-keys-file",
            envvar="THINKCHAIN_PROXY_API_KEYS_FILE",
            help="A file of client keys, one a line ('#' starts a comment).",
            show_default=False,
        ),
    ] = None,
    upstream_api_key: Annotated[
        str | None,
        typer.Option(
            "--upstream-api-key",
            envvar="THINKCHAIN_API_KEY",
            help="The key the proxy sends to the upstream servers.",
            show_default=False,
        ),
    ] = None,
    max_concurrent_chains: Annotated[
        int, typer.Option(help="Reasoning chains at once; more are answered 429.")
    ] = PROXY_DEFAULTS.max_concurrent_chains,
    variant_pattern: Annotated[
        str, typer.Option(help="Name of a model's reasoning variant; {model} is its name.")
    ] = PROXY_DEFAULTS.variant_pattern,
    max_steps: Annotated[
        int, typer.Option(help="The most steps a request may ask for.")
    ] = PROXY_DEFAULTS.max_steps_cap,
    default_steps: Annotated[
        int, typer.Option(help="Steps at most, unless asked.")
    ] = CHAIN_DEFAULTS.max_steps,
    min_steps: Annotated[
        int, typer.Option(help="Steps at least, unless asked.")
    ] = CHAIN_DEFAULTS.min_steps,
    max_k: Annotated[
        int, typer.Option(help="The most chains self-consistency may run.")
    ] = PROXY_DEFAULTS.max_k,
    max_seconds: Annotated[
        float | None, typer.Option(help="Time budget of one chain.")
    ] = PROXY_DEFAULTS.max_seconds,
    max_total_tokens: Annotated[
        int | None, typer.Option(help="Generated-token budget of one chain.")
    ] = None,
    max_body_bytes: Annotated[
        int, typer.Option(help="Largest request body accepted.")
    ] = PROXY_DEFAULTS.max_body_bytes,
    timeout: Annotated[
        float, typer.Option(help="Seconds to wait for an upstream between two tokens.")
    ] = 120.0,
    tools: Annotated[
        str,
        typer.Option(
            envvar="THINKCHAIN_PROXY_TOOLS",
            help="Let requests ask for code steps (thinkchain.tools): 'python' runs the "
            "Python the model writes in the sandbox, on this machine. Off unless given.",
            show_default=False,
        ),
    ] = "",
    reasoning_format: Annotated[
        str,
        typer.Option(
            envvar="THINKCHAIN_PROXY_REASONING_FORMAT",
            help="Where chat completions put the steps: reasoning_content (read by most "
            "clients), reasoning (vLLM's newer name), think (<think> tags before the answer in "
            "content, for chat apps) or none. A request may choose its own "
            "(thinkchain.reasoning_format). The Responses API uses its reasoning item.",
        ),
    ] = "reasoning_content",
    max_stored_responses: Annotated[
        int,
        typer.Option(
            help="Responses kept in memory for previous_response_id (0: none kept).",
        ),
    ] = 1000,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
) -> None:
    """Serve an OpenAI-compatible API where every model also has a reasoning variant."""
    import uvicorn

    from thinkchain.proxy import ProxySettings, create_app
    from thinkchain.proxy.proxy_settings import read_keys_file

    with clear_errors():
        keys = tuple(SecretStr(k) for k in (api_key or []) if k.strip())
        if api_keys_file:
            try:
                keys += read_keys_file(api_keys_file)
            except OSError as err:
                fail(f"cannot read the keys file: {err.strerror or err}")
        upstreams = tuple(
            u.strip() for item in (upstream or []) for u in item.split(",") if u.strip()
        )
        settings = ProxySettings(
            upstreams=upstreams,
            upstream_api_key=SecretStr(upstream_api_key) if upstream_api_key else None,
            api_keys=keys,
            variant_pattern=variant_pattern,
            max_concurrent_chains=max_concurrent_chains,
            max_body_bytes=max_body_bytes,
            max_steps_cap=max_steps,
            max_k=max_k,
            default_k=min(STRATEGY_DEFAULTS.k, max_k),
            max_seconds=max_seconds,
            max_total_tokens=max_total_tokens,
            read_timeout=timeout,
            chain=ChainSettings(max_steps=min(default_steps, max_steps), min_steps=min_steps),
            tools=parse_tools(tools),
            reasoning_format=reasoning_format,  # validated by the settings: a clear error
            max_stored_responses=max_stored_responses,
        )
        local = None
        if not upstreams:
            local = backend_from_options(
                None, model, None, model_path, demo=demo, parallel=max_concurrent_chains
            )
        app = create_app(settings, local_backend=local)
    served = (
        ", ".join(upstreams) if upstreams else f"in-process model {local.model if local else ''}"
    )
    auth = f"on ({len(keys)} key{'s' if len(keys) != 1 else ''})" if keys else "off"
    code = f"on ({', '.join(settings.tools)})" if settings.tools else "off"
    err_console.print(
        f"thinkchain proxy on http://{host}:{port}/v1 for {served}; auth {auth}; "
        f"reasoning variants named {variant_pattern}; code steps {code}; steps in chat "
        f"completions: {settings.reasoning_format}",
        markup=False,
        highlight=False,
    )
    uvicorn.run(app, host=host, port=port, log_level=log_level.lower())
