"""llama-cpp-python's OpenAI-compatible server on the CPU: its command line and its extra."""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass, field
from pathlib import Path

from thinkchain.models.serve.shared import (
    FindSpec,
    ServeError,
    default_served_name,
    missing_modules,
)

LLAMACPP_DEFAULT_PORT = 8080
# Room for a chain of many steps; llama-cpp-python's own default (2048) is too small.
LLAMACPP_DEFAULT_CONTEXT = 8192
# llama-cpp-python's server extra: what `python -m llama_cpp.server` imports.
_LLAMACPP_SERVER_MODULES = ("llama_cpp", "uvicorn", "fastapi", "sse_starlette", "pydantic_settings")


@dataclass(frozen=True)
class LlamaCppOptions:
    model_path: Path
    served_model_name: str | None = None  # default: the file name without .gguf
    host: str = "127.0.0.1"  # a CPU server is a local thing unless asked otherwise
    port: int = LLAMACPP_DEFAULT_PORT
    n_ctx: int = LLAMACPP_DEFAULT_CONTEXT
    api_key: str | None = field(default=None, repr=False)
    extra_args: tuple[str, ...] = ()

    @property
    def served_name(self) -> str:
        return self.served_model_name or default_served_name(str(self.model_path))


def llamacpp_command(opts: LlamaCppOptions, python: str = sys.executable) -> list[str]:
    cmd = [python, "-m", "llama_cpp.server", "--model", str(opts.model_path)]
    cmd += ["--model_alias", opts.served_name, "--host", opts.host, "--port", str(opts.port)]
    cmd += ["--n_ctx", str(opts.n_ctx)]
    if opts.api_key:
        cmd += ["--api_key", opts.api_key]
    return cmd + list(opts.extra_args)


def check_llamacpp_installed(find_spec: FindSpec = importlib.util.find_spec) -> None:
    missing = missing_modules(_LLAMACPP_SERVER_MODULES, find_spec)
    if missing:
        raise ServeError(
            f"llama-cpp-python's server is not installed (missing: {', '.join(missing)}): "
            "pip install 'thinkchain[serve]'"
        )
