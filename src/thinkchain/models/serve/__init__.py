"""Start a model server as a child process, wait until it answers, stop it cleanly.

Two engines give the same OpenAI-compatible server shape:

* ``vllm`` (``vllm_server``): ``python -m vllm.entrypoints.openai.api_server`` with its
  arguments (served name, 32k context, port 8000).  Needs a GPU and ``thinkchain[vllm]``.
* ``llama.cpp`` (``llamacpp_server``): llama-cpp-python's server on the CPU, serving a GGUF
  (the embedded default unless told otherwise).

The command lines are pure functions so they can be tested without either engine.  The child
process (``process``) runs in its own session; in the foreground (``foreground``) Ctrl-C
reaches thinkchain, which forwards it to the whole group, waits a grace period, then kills
whatever is left, grandchildren included, so no server outlives the command.
"""

from __future__ import annotations

from thinkchain.models.serve.child_process import STOP_GRACE, ServerProcess, list_models
from thinkchain.models.serve.foreground import run_in_foreground
from thinkchain.models.serve.llamacpp_server import (
    LLAMACPP_DEFAULT_CONTEXT,
    LLAMACPP_DEFAULT_PORT,
    LlamaCppOptions,
    check_llamacpp_installed,
    llamacpp_command,
)
from thinkchain.models.serve.shared import (
    ENGINES,
    READY_TIMEOUT,
    FindSpec,
    ServeError,
    base_url,
    default_served_name,
    free_port,
    port_is_free,
    redact,
)
from thinkchain.models.serve.vllm_server import (
    VLLM_DEFAULT_MAX_MODEL_LEN,
    VLLM_DEFAULT_PORT,
    VllmOptions,
    check_gpu,
    check_vllm_installed,
    detect_gpu,
    vllm_command,
)

__all__ = [
    "ENGINES",
    "LLAMACPP_DEFAULT_CONTEXT",
    "LLAMACPP_DEFAULT_PORT",
    "READY_TIMEOUT",
    "STOP_GRACE",
    "VLLM_DEFAULT_MAX_MODEL_LEN",
    "VLLM_DEFAULT_PORT",
    "FindSpec",
    "LlamaCppOptions",
    "ServeError",
    "ServerProcess",
    "VllmOptions",
    "base_url",
    "check_gpu",
    "check_llamacpp_installed",
    "check_vllm_installed",
    "default_served_name",
    "detect_gpu",
    "free_port",
    "list_models",
    "llamacpp_command",
    "port_is_free",
    "redact",
    "run_in_foreground",
    "vllm_command",
]
