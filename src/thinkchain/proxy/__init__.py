"""The OpenAI-compatible reasoning proxy: any model, served as itself and as a reasoning model."""

from __future__ import annotations

from .app import create_app
from .settings import ProxySettings

__all__ = ["ProxySettings", "create_app"]
