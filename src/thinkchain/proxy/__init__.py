"""The OpenAI-compatible reasoning proxy: any model, served as itself and as a reasoning model."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from thinkchain.proxy.proxy_settings import ProxySettings

if TYPE_CHECKING:
    from thinkchain.proxy.app import create_app

__all__ = ["ProxySettings", "create_app"]


def __getattr__(name: str) -> Any:
    # The app needs FastAPI (the "proxy" extra); its settings do not, so the command line can
    # read their defaults without it.
    if name == "create_app":
        from thinkchain.proxy.app import create_app

        return create_app
    raise AttributeError(name)
