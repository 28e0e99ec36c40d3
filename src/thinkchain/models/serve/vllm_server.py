"""vLLM's OpenAI-compatible server: its command line and what it needs (vLLM and a GPU)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from thinkchain.models.serve.shared import (
    FindSpec,
    ServeError,
    default_served_name,
    missing_modules,
)

# The deployment started by default: port 8000, a 32k context.
VLLM_DEFAULT_PORT = 8000
VLLM_DEFAULT_MAX_MODEL_LEN = 32768


@dataclass(frozen=True)
class VllmOptions:
    model: str  # a local folder or a hub id that vLLM downloads itself
    served_model_name: str | None = None  # default: the model's last path component
    max_model_len: int | None = VLLM_DEFAULT_MAX_MODEL_LEN
    host: str | None = None  # None: vLLM's default, every interface
    port: int = VLLM_DEFAULT_PORT
    tensor_parallel_size: int | None = None
    pipeline_parallel_size: int | None = None
    api_key: str | None = field(default=None, repr=False)
    extra_args: tuple[str, ...] = ()  # passed through untouched, e.g. the Ray backend

    @property
    def served_name(self) -> str:
        return self.served_model_name or default_served_name(self.model)


def vllm_command(opts: VllmOptions, python: str = sys.executable) -> list[str]:
    cmd = [python, "-m", "vllm.entrypoints.openai.api_server", "--model", opts.model]
    cmd += ["--served-model-name", opts.served_name]
    if opts.max_model_len is not None:
        cmd += ["--max-model-len", str(opts.max_model_len)]
    if opts.host is not None:
        cmd += ["--host", opts.host]
    cmd += ["--port", str(opts.port)]
    if opts.tensor_parallel_size is not None:
        cmd += ["--tensor-parallel-size", str(opts.tensor_parallel_size)]
    if opts.pipeline_parallel_size is not None:
        cmd += ["--pipeline-parallel-size", str(opts.pipeline_parallel_size)]
    if opts.api_key:
        cmd += ["--api-key", opts.api_key]
    return cmd + list(opts.extra_args)


def check_vllm_installed(find_spec: FindSpec = importlib.util.find_spec) -> None:
    # find_spec, not import: importing vLLM takes seconds and initialises CUDA.
    if missing_modules(["vllm"], find_spec):
        raise ServeError(
            "vLLM is not installed: pip install 'thinkchain[vllm]' on a machine with a GPU "
            "(on a CPU, use `thinkchain serve --engine llama.cpp`)"
        )


def detect_gpu(
    dev: Path = Path("/dev"),
    which: Callable[[str], str | None] = shutil.which,
    env: Mapping[str, str] | None = None,
) -> str | None:
    """A short description of the GPUs vLLM could use, or None.

    Cheap checks only (no CUDA initialisation): nvidia-smi, NVIDIA device files, the ROCm
    driver's device file.  CUDA_VISIBLE_DEVICES set to nothing hides every GPU.
    """
    visible = (os.environ if env is None else env).get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return None
    smi = which("nvidia-smi")
    if smi:
        try:
            listed = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=15)
            gpus = [ln for ln in listed.stdout.splitlines() if ln.startswith("GPU ")]
            if listed.returncode == 0 and gpus:
                return (
                    f"{len(gpus)} NVIDIA GPU(s): {gpus[0].split(':', 1)[-1].split('(')[0].strip()}"
                )
        except (OSError, subprocess.SubprocessError):
            pass
    nvidia = sorted(p for p in dev.glob("nvidia[0-9]*"))
    if nvidia:
        return f"{len(nvidia)} NVIDIA device(s)"
    if (dev / "kfd").exists():
        return "an AMD ROCm device"
    return None


def check_gpu(detect: Callable[[], str | None] | None = None) -> str:
    found = (detect or detect_gpu)()
    if not found:
        raise ServeError(
            "no GPU found (no nvidia-smi, /dev/nvidia*, or /dev/kfd): vLLM needs one; "
            "on a CPU, use `thinkchain serve --engine llama.cpp`"
        )
    return found
