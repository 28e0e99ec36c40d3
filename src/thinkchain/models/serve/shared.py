"""What both engines' servers share: the error, names, addresses, ports, install checks."""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence
from typing import Any

ENGINES = ("vllm", "llama.cpp")
# Loading a 7B model on a GPU takes a minute or two (longer when vLLM downloads it first).
READY_TIMEOUT = {"vllm": 1800.0, "llama.cpp": 300.0}
_SECRET_FLAGS = ("--api-key", "--api_key")

FindSpec = Callable[[str], Any]


class ServeError(Exception):
    """The server cannot be started or stopped.  The message is meant for people."""


def default_served_name(model: str) -> str:
    """``/root/autodl-tmp/qwen/Qwen2.5-7B-Instruct`` or ``qwen/Qwen2.5-7B-Instruct`` ->
    ``Qwen2.5-7B-Instruct``: the model's last path component, without ``.gguf``."""
    name = model.rstrip("/\\").replace("\\", "/").rsplit("/", 1)[-1]
    return name.removesuffix(".gguf") or model


def redact(cmd: Sequence[str]) -> str:
    """The command for people to read, with API keys replaced."""
    shown = list(cmd)
    for i, arg in enumerate(shown):
        if arg in _SECRET_FLAGS and i + 1 < len(shown):
            shown[i + 1] = "***"
        elif arg.startswith(tuple(f + "=" for f in _SECRET_FLAGS)):
            shown[i] = arg.split("=", 1)[0] + "=***"
    return " ".join(shown)


def base_url(host: str | None, port: int) -> str:
    """The URL a client on this machine uses (a wildcard bind is reached via loopback)."""
    if host in (None, "", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/v1"


def missing_modules(modules: Sequence[str], find_spec: FindSpec) -> list[str]:
    """The ``modules`` that cannot be imported, found without importing them."""
    missing = []
    for name in modules:
        try:
            if find_spec(name) is None:
                missing.append(name)
        except (ImportError, ValueError):
            missing.append(name)
    return missing


def port_is_free(host: str | None, port: int) -> bool:
    bind_host = "" if host in (None, "0.0.0.0") else host
    family = socket.AF_INET6 if bind_host and ":" in bind_host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # Servers set SO_REUSEADDR, so a port left in TIME_WAIT is free for them; on Linux a
        # port with a live listener still refuses this bind.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((bind_host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
