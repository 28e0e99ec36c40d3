"""How many sequences ``thinkchain eval`` asks the embedded model to decode together."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from thinkchain.cli import app, eval_cmd


class BackendBuilt(Exception):
    """Raised by the stand-in builder: the test needs the slot count, not a run."""


@pytest.fixture
def asked_slots(monkeypatch: pytest.MonkeyPatch) -> list[int | None]:
    asked: list[int | None] = []

    def build(*args: object, parallel: int | None = None, **kwargs: object) -> None:
        asked.append(parallel)
        raise BackendBuilt

    monkeypatch.setattr(eval_cmd, "backend_from_options", build)
    return asked


@pytest.mark.parametrize(
    ("modes", "extra", "slots"),
    [
        ("direct,cot,chain", [], 4),  # one sequence per item in flight
        ("cot,sc", ["--k", "5"], 20),  # every in-flight sc item runs its K samples at once
        ("sc", ["--k", "3", "--concurrency", "2"], 6),
    ],
)
def test_every_sample_in_flight_gets_a_slot(
    asked_slots: list[int | None], tmp_path: Path, modes: str, extra: list[str], slots: int
) -> None:
    args = ["eval", "--dataset", "letters", "--n", "2", "--modes", modes, "--out", str(tmp_path)]
    result = CliRunner().invoke(app, [*args, *extra])
    assert isinstance(result.exception, BackendBuilt), result.output
    assert asked_slots == [slots]
