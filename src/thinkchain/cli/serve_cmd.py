"""``thinkchain serve``: one command for an OpenAI-compatible model server (vLLM or llama.cpp)."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from thinkchain.cli.options import clear_errors, download_progress, err_console, fail
from thinkchain.models import hub
from thinkchain.models import serve as engine
from thinkchain.models.embedded import find, resolve_model_path


def serve(
    engine_name: Annotated[
        str,
        typer.Option(
            "--engine",
            help="vllm (GPU, a Hugging Face model) or llama.cpp (CPU, a GGUF).",
            show_default=False,
        ),
    ],
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="vllm: a model folder or hub id (e.g. a `thinkchain models pull` result, or "
            "Qwen/Qwen2.5-7B-Instruct). llama.cpp: an embedded model (default, small).",
            show_default=False,
        ),
    ] = None,
    model_path: Annotated[
        str | None,
        typer.Option(
            "--model-path",
            help="llama.cpp: a GGUF file (default: the embedded default model).",
            show_default=False,
        ),
    ] = None,
    served_model_name: Annotated[
        str | None,
        typer.Option(
            help="The model's name for clients (default: the model's last path component, "
            "e.g. Qwen2.5-7B-Instruct).",
            show_default=False,
        ),
    ] = None,
    max_model_len: Annotated[
        int | None,
        typer.Option(
            help=f"Context length in tokens (vllm: {engine.VLLM_DEFAULT_MAX_MODEL_LEN}, "
            f"llama.cpp: {engine.LLAMACPP_DEFAULT_CONTEXT}).",
            show_default=False,
        ),
    ] = None,
    host: Annotated[
        str | None,
        typer.Option(
            help="Address to listen on (vllm: every interface; llama.cpp: 127.0.0.1).",
            show_default=False,
        ),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(
            help=f"Port (vllm: {engine.VLLM_DEFAULT_PORT}, llama.cpp: "
            f"{engine.LLAMACPP_DEFAULT_PORT}; 0 picks a free one).",
            show_default=False,
        ),
    ] = None,
    tensor_parallel_size: Annotated[
        int | None, typer.Option(help="vllm: GPUs per model replica.", show_default=False)
    ] = None,
    pipeline_parallel_size: Annotated[
        int | None,
        typer.Option(help="vllm: pipeline stages (nodes, with Ray).", show_default=False),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(help="Require this API key from clients.", show_default=False),
    ] = None,
    ready_timeout: Annotated[
        float | None,
        typer.Option(
            help="Seconds to wait for the server to answer (vllm: 1800, llama.cpp: 300).",
            show_default=False,
        ),
    ] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Hide the server's own log.")
    ] = False,
    no_gpu_check: Annotated[
        bool,
        typer.Option(
            "--no-gpu-check", help="vllm: start even where no GPU is seen (CPU builds of vLLM)."
        ),
    ] = False,
    extra_args: Annotated[
        list[str] | None,
        typer.Argument(
            help="After `--`: more arguments for the engine, passed through untouched "
            "(e.g. -- --distributed-executor-backend ray).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Start a model server, wait until it answers, print its base URL; Ctrl-C stops it."""
    extra = tuple(extra_args or ())
    with clear_errors():
        try:
            if engine_name == "vllm":
                server, served = _vllm_server(
                    model, model_path, served_model_name, max_model_len, host, port,
                    tensor_parallel_size, pipeline_parallel_size, api_key, extra, quiet,
                    no_gpu_check,
                )  # fmt: skip
            elif engine_name in ("llama.cpp", "llamacpp", "llama-cpp"):
                engine_name = "llama.cpp"
                if tensor_parallel_size or pipeline_parallel_size:
                    fail(
                        "--tensor-parallel-size and --pipeline-parallel-size are for --engine vllm"
                    )
                server, served = _llamacpp_server(
                    model, model_path, served_model_name, max_model_len, host, port, api_key,
                    extra, quiet,
                )  # fmt: skip
            else:
                fail(f"unknown engine {engine_name!r}; one of: {', '.join(engine.ENGINES)}")
            err_console.print(
                f"[dim]starting: {escape(engine.redact(server.command))}[/]", markup=True
            )

            def ready(models: list[str]) -> None:
                typer.echo(server.url)  # stdout: the one thing scripts need
                err_console.print(
                    f"[green]ready:[/] {escape(served)} at {server.url}\n"
                    f'  thinkchain ask --base-url {server.url} --model {escape(served)} "…"\n'
                    "  Ctrl-C stops the server.",
                    markup=True,
                )

            def stopping(sig: int) -> None:
                name = signal.Signals(sig).name
                err_console.print(f"\n[yellow]stopping the server ({name})…[/]", markup=True)

            engine.run_in_foreground(
                server,
                ready_timeout=ready_timeout or engine.READY_TIMEOUT[engine_name],
                on_ready=ready,
                on_stopping=stopping,
            )
            err_console.print("stopped")
        except engine.ServeError as err:
            fail(str(err), code=1)


def _check_port(host: str | None, port: int) -> int:
    if port == 0:
        return engine.free_port("127.0.0.1" if host in (None, "0.0.0.0") else host)
    if not engine.port_is_free(host, port):
        raise engine.ServeError(
            f"port {port} is already in use (another server?): stop it or choose --port"
        )
    return port


def _vllm_server(
    model: str | None,
    model_path: str | None,
    served_model_name: str | None,
    max_model_len: int | None,
    host: str | None,
    port: int | None,
    tensor_parallel_size: int | None,
    pipeline_parallel_size: int | None,
    api_key: str | None,
    extra: tuple[str, ...],
    quiet: bool,
    no_gpu_check: bool,
) -> tuple[engine.ServerProcess, str]:
    chosen = model or model_path
    if not chosen:
        fail("--engine vllm needs --model (a model folder or a hub id)")
    engine.check_vllm_installed()
    if not no_gpu_check:
        gpu = engine.check_gpu(engine.detect_gpu)  # looked up at call time: tests replace it
        err_console.print(f"[dim]GPU: {escape(gpu)}[/]", markup=True)
    location = _vllm_model_location(chosen)
    opts = engine.VllmOptions(
        model=location,
        served_model_name=served_model_name or engine.default_served_name(chosen),
        max_model_len=max_model_len or engine.VLLM_DEFAULT_MAX_MODEL_LEN,
        host=host,
        port=_check_port(host, engine.VLLM_DEFAULT_PORT if port is None else port),
        tensor_parallel_size=tensor_parallel_size,
        pipeline_parallel_size=pipeline_parallel_size,
        api_key=api_key,
        extra_args=extra,
    )
    return _server_process(engine.vllm_command(opts), opts, "vLLM server", api_key, quiet)


def _vllm_model_location(model: str) -> str:
    """A folder as given; a hub id pulled with `thinkchain models pull` -> its folder;
    any other id is left for vLLM to download from the Hugging Face hub itself."""
    if Path(model).expanduser().exists():
        return str(Path(model).expanduser().resolve())
    if hub.is_hub_name(model):
        local = hub.find_local(model)
        if local is not None:
            err_console.print(
                f"[dim]using {escape(local.label())} from {escape(str(local.path))}[/]", markup=True
            )
            return str(local.path)
        err_console.print(
            f"[dim]{escape(model)} is not pulled: vLLM downloads it from the Hugging Face hub "
            f"(or pull it first: thinkchain models pull {model} --source modelscope)[/]",
            markup=True,
        )
    return model


def _llamacpp_server(
    model: str | None,
    model_path: str | None,
    served_model_name: str | None,
    max_model_len: int | None,
    host: str | None,
    port: int | None,
    api_key: str | None,
    extra: tuple[str, ...],
    quiet: bool,
) -> tuple[engine.ServerProcess, str]:
    engine.check_llamacpp_installed()
    name = find(model).name if model and not model_path else None
    progress, update = download_progress()
    try:
        gguf = resolve_model_path(model_path, model=name, progress=update)
    finally:
        if progress.live.is_started:
            progress.stop()
    listen = host or "127.0.0.1"
    opts = engine.LlamaCppOptions(
        model_path=gguf,
        served_model_name=served_model_name,
        host=listen,
        port=_check_port(listen, engine.LLAMACPP_DEFAULT_PORT if port is None else port),
        n_ctx=max_model_len or engine.LLAMACPP_DEFAULT_CONTEXT,
        api_key=api_key,
        extra_args=extra,
    )
    return _server_process(engine.llamacpp_command(opts), opts, "llama.cpp server", api_key, quiet)


def _server_process(
    command: list[str],
    opts: engine.VllmOptions | engine.LlamaCppOptions,
    name: str,
    api_key: str | None,
    quiet: bool,
) -> tuple[engine.ServerProcess, str]:
    """The server process for either engine, with the model name its clients must ask for."""
    server = engine.ServerProcess(
        command,
        engine.base_url(opts.host, opts.port),
        name=name,
        api_key=api_key,
        echo=None if quiet else sys.stderr,
    )
    return server, opts.served_name
