"""Saved KV states of fixed prompt prefixes, on disk, so a new process loads instead of evaluates.

Every chain's prompt starts with the same few hundred tokens (the system prompt and layout of
its language, mode and tools); evaluating them takes seconds on a CPU, loading their KV state
takes milliseconds.  The files are llama.cpp's own sequence-state files
(``llama_state_seq_save_file``); this module only decides where they live, whether one may be
trusted, and which to delete.

* Name: ``<key>-<digest>.ggsq``.  The key is a SHA-256 over everything that makes a state
  valid (the model file's checksum, the llama.cpp build, the context's layout, the exact
  prefix tokens: see :func:`state_key`); the digest is the SHA-256 of the file's bytes.  A file
  is written under a temporary name and renamed, so a reader sees a whole file or none, and
  a file whose bytes do not match its digest (truncated, flipped, half-copied) is deleted and
  treated as missing: the prefix is evaluated and saved again.  Nothing of ours is inside
  the file, so the digest rides in its name.
* Least recently used goes first: a file's mtime is set when it is used, and after every
  save the oldest files are deleted until the folder is under its size cap.
* The store never raises: a disk that is full, read-only or missing only costs the time of
  evaluating the prefix, the way it was before there was a store.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("thinkchain.prefix_store")

ENV_STORE = "THINKCHAIN_PREFIX_CACHE"  # "off" (or 0/no/false): evaluate every prefix
ENV_CAP_MB = "THINKCHAIN_PREFIX_CACHE_MB"
DEFAULT_CAP_MB = 256  # ~20 prefixes of the default model (12 MB each at ~450 tokens)
SUFFIX = ".ggsq"  # llama.cpp's name for the format (LLAMA_STATE_SEQ_MAGIC, "ggsq")
FORMAT = 1  # bump when the key's meaning changes
_CHUNK = 4 * 1024 * 1024
_ABANDONED_S = 3600.0  # a partial file this old belongs to a process that died writing it
_HEAD = 4 * 1024 * 1024  # bytes of a GGUF hashed for its fingerprint, at each end


def state_key(identity: dict[str, Any], tokens: Sequence[int]) -> str:
    """The key of a prefix's state: the identity (model, build, context) and the exact tokens."""
    digest = hashlib.sha256()
    digest.update(json.dumps({"format": FORMAT, **identity}, sort_keys=True).encode())
    digest.update(np.asarray(tokens, dtype="<i4").tobytes())
    return digest.hexdigest()[:40]


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()[:40]


def model_fingerprint(path: Path) -> str:
    """What identifies a model file's weights, cheaply.

    An embedded model verified since it last changed has its full SHA-256 on record; any
    other GGUF is known by its size, mtime and a hash of its first and last 4 MiB (hashing
    a whole file takes seconds; a file changed in place keeps neither its mtime nor, for a
    re-quantised or retrained model, its header).
    """
    from thinkchain.models.embedded import recorded_sha256

    recorded = recorded_sha256(path)
    if recorded is not None:
        return f"sha256:{recorded}"
    st = path.stat()
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        digest.update(fh.read(_HEAD))
        if st.st_size > 2 * _HEAD:
            fh.seek(st.st_size - _HEAD)
            digest.update(fh.read(_HEAD))
    return f"size:{st.st_size}:mtime:{st.st_mtime_ns}:ends:{digest.hexdigest()}"


def llama_build() -> str:
    """The llama.cpp build: the binding's version, the library's, its file, the CPU features."""
    import llama_cpp

    lib = Path(llama_cpp.__file__).parent / "lib"
    files = []
    for path in (
        sorted(lib.glob("lib*.so*")) + sorted(lib.glob("*.dylib")) + sorted(lib.glob("*.dll"))
    ):
        try:
            st = path.stat()
            files.append(f"{path.name}:{st.st_size}:{st.st_mtime_ns}")
        except OSError:
            continue
    parts = [
        llama_cpp.__version__,
        getattr(llama_cpp, "llama_version", lambda: b"")().decode(errors="replace"),
        llama_cpp.llama_print_system_info().decode(errors="replace"),
        *files,
    ]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:24]


# The context parameters that decide what a saved state's bytes mean, or how they were computed.
_LAYOUT = (
    "n_batch", "n_ubatch", "type_k", "type_v", "flash_attn_type", "flash_attn", "kv_unified",
    "swa_full", "rope_scaling_type", "rope_freq_base", "rope_freq_scale", "yarn_ext_factor",
    "yarn_attn_factor", "yarn_beta_fast", "yarn_beta_slow", "yarn_orig_ctx", "pooling_type",
    "attention_type",
)  # fmt: skip


def context_layout(params: Any) -> dict[str, Any]:
    """What of a llama.cpp context's parameters a saved state depends on.

    Not n_ctx nor the number of sequences: the state holds the prefix's cells with their
    positions, which mean the same in any context they fit in (llama.cpp refuses a state
    that does not fit), so the CLI, the page and the proxy share their files.
    """
    return {name: getattr(params, name) for name in _LAYOUT if hasattr(params, name)}


def enabled() -> bool:
    return os.environ.get(ENV_STORE, "").strip().lower() not in ("off", "0", "no", "false")


def cap_bytes() -> int:
    raw = os.environ.get(ENV_CAP_MB, "").strip()
    try:
        megabytes = float(raw) if raw else DEFAULT_CAP_MB
    except ValueError:
        log.warning("%s=%r is not a number; using %s MB", ENV_CAP_MB, raw, DEFAULT_CAP_MB)
        megabytes = DEFAULT_CAP_MB
    return max(0, int(megabytes * 1024 * 1024))


class PrefixStore:
    """A folder of saved prefix states with a size cap.  Every method swallows OS errors."""

    def __init__(self, folder: Path, cap: int) -> None:
        self.folder = folder
        self.cap = cap

    def find(self, key: str) -> Path | None:
        """The verified file of ``key`` (marked as just used), or None.  A file whose bytes do
        not match the digest in its name is deleted."""
        try:
            candidates = sorted(self.folder.glob(f"{key}-*{SUFFIX}"))
        except OSError:
            return None
        found = None
        for path in candidates:
            expected = path.name[len(key) + 1 : -len(SUFFIX)]
            try:
                good = found is None and file_digest(path) == expected
            except OSError:
                good = False
            if good:
                found = path
            else:
                log.info("dropping an unusable prefix state: %s", path.name)
                self._unlink(path)
        if found is not None:
            try:
                os.utime(found)  # least recently used goes first
            except OSError:
                pass
        return found

    def save(self, key: str, write: Callable[[Path], bool]) -> Path | None:
        """Save a state: ``write(path)`` writes the file (llama.cpp's save) and says whether it
        did.  Returns the file's final path, or None when nothing was kept."""
        tmp: Path | None = None
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=".partial-", suffix=SUFFIX, dir=self.folder)
            os.close(fd)
            tmp = Path(name)
            if not write(tmp):
                return None
            size = tmp.stat().st_size
            if size == 0 or size > self.cap:
                return None
            final = self.folder / f"{key}-{file_digest(tmp)}{SUFFIX}"
            os.replace(tmp, final)
            tmp = None
            for other in self.folder.glob(f"{key}-*{SUFFIX}"):
                if other != final:  # an older state of the same key (another process wrote it)
                    self._unlink(other)
            self.evict(keep=final)
            return final
        except OSError as err:
            log.info("could not save a prefix state: %s", err)
            return None
        finally:
            if tmp is not None:
                self._unlink(tmp)

    def discard(self, path: Path) -> None:
        """A file llama.cpp refused to load, or that held other tokens than its key's."""
        log.info("dropping a prefix state llama.cpp could not use: %s", path.name)
        self._unlink(path)

    def evict(self, keep: Path | None = None) -> None:
        """Delete the least recently used files until the folder is under its cap."""
        try:
            entries = []
            for path in self.folder.glob(f"*{SUFFIX}"):
                st = path.stat()
                if path.name.startswith("."):  # another process is writing it, or crashed
                    if time.time() - st.st_mtime > _ABANDONED_S:
                        self._unlink(path)
                    continue
                entries.append((st.st_mtime_ns, path, st.st_size))
        except OSError:
            return
        total = sum(size for _, _, size in entries)
        for _, path, size in sorted(entries, key=lambda e: e[0]):
            if total <= self.cap:
                break
            if path == keep:
                continue
            self._unlink(path)
            total -= size

    def files(self) -> list[Path]:
        """The saved states, least recently used first (for tests and the benchmark)."""
        try:
            paths = [p for p in self.folder.glob(f"*{SUFFIX}") if not p.name.startswith(".")]
            return sorted(paths, key=lambda p: p.stat().st_mtime_ns)
        except OSError:
            return []

    @staticmethod
    def _unlink(path: Path) -> None:
        try:
            path.unlink(missing_ok=True)
        except OSError:
            pass
