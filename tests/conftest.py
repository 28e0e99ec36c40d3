from __future__ import annotations

import os
from pathlib import Path

import pytest

from thinkchain.models import embedded as models

# Tests never touch a real model hub or a cache folder the user relies on, unless a test
# asks for the embedded model explicitly (see the `embedded_model_path` fixture).
REAL_CACHE = models.cache_dir()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


def _embedded(name: str) -> Path:
    old = os.environ.get(models.ENV_CACHE)
    os.environ[models.ENV_CACHE] = str(REAL_CACHE)
    try:
        model = models.find(name)
        if not models.is_present(model):
            path = models.path_of(model)
            if not (path.is_file() and models.verify(model)):
                pytest.fail(
                    f"the embedded model {model.name} is not installed: run "
                    f"`thinkchain models pull {model.aliases[0]}` (CI does this in .ci/run)"
                )
        return models.path_of(model)
    finally:
        if old is None:
            os.environ.pop(models.ENV_CACHE, None)
        else:
            os.environ[models.ENV_CACHE] = old


@pytest.fixture(scope="session")
def small_model_path() -> Path:
    """The small embedded GGUF (0.5B): fast end-to-end tests."""
    return _embedded("small")


@pytest.fixture(scope="session")
def default_model_path() -> Path:
    """The default embedded GGUF (1.5B)."""
    return _embedded("default")


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv(models.ENV_CACHE, str(cache))
    monkeypatch.setenv("THINKCHAIN_DATA_DIR", str(tmp_path_factory.mktemp("data")))
    for var in (
        "THINKCHAIN_BASE_URL",
        "THINKCHAIN_MODEL",
        "THINKCHAIN_API_KEY",
        "THINKCHAIN_MODEL_PATH",
    ):
        monkeypatch.delenv(var, raising=False)
    yield
