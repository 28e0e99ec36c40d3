"""Where thinkchain keeps its files: a data folder (history) and a cache folder (models,
saved prompt prefixes), each movable by an environment variable.

A module of its own, below every part that needs it: the sandbox must know both folders to
keep them out of sight of model-written code, without importing history or model management.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

ENV_DATA_DIR = "THINKCHAIN_DATA_DIR"
ENV_CACHE = "THINKCHAIN_CACHE_DIR"


def data_dir() -> Path:
    """The folder history lives in by default."""
    configured = os.environ.get(ENV_DATA_DIR)
    if configured:
        return Path(configured).expanduser()
    return Path(platformdirs.user_data_dir("thinkchain"))


def cache_dir() -> Path:
    """The folder models and saved prompt prefixes live in."""
    configured = os.environ.get(ENV_CACHE)
    if configured:
        return Path(configured).expanduser()
    return Path(platformdirs.user_cache_dir("thinkchain"))
