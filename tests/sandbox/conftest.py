"""Fixtures of the sandbox tests: the isolation method, a leftover check, a temp folder.

Every test here runs real processes through the real sandbox; nothing of it is mocked.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from . import helpers
from .helpers import NO_BWRAP, bwrap_works, sandbox_processes


@pytest.fixture(scope="session", autouse=True)
def runs_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The folder this session's sandbox runs make their temporary folders in."""
    import tempfile

    folder = tmp_path_factory.getbasetemp()
    helpers.RUNS[:] = [str(folder)]
    runs = folder / "runs"
    runs.mkdir(exist_ok=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tempfile, "tempdir", str(runs))
        yield runs


@pytest.fixture(params=["bwrap", "fallback"])
def method(request: pytest.FixtureRequest) -> str:
    if request.param == "bwrap" and not bwrap_works():
        pytest.skip(NO_BWRAP)
    return str(request.param)


@pytest.fixture
def bwrap() -> str:
    if not bwrap_works():
        pytest.skip(NO_BWRAP)
    return "bwrap"


@pytest.fixture(autouse=True)
def no_leftovers() -> Iterator[None]:
    """After every test: no process of any run is left, and no temporary folder."""
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    yield
    left = sandbox_processes()
    assert not left, f"processes outlived their run: {[(p.pid, p.name()) for p in left]}"
    children = [p for p in psutil.Process().children(recursive=True) if p.pid not in before]
    alive = [p for p in children if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not alive, f"child processes outlived their run: {alive}"


@pytest.fixture
def own_tempdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The folder the sandbox makes its temporary folders in, for the test to inspect."""
    import tempfile

    folder = tmp_path / "temp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder
