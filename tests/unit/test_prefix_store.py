"""The prefix store on disk: a file is used only when its bytes match its digest, the least
recently used files go first under the cap, and no disk trouble ever raises."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from thinkchain.models import embedded as models
from thinkchain.models.backends import prefix_store
from thinkchain.models.backends.prefix_store import PrefixStore, model_fingerprint, state_key

IDENTITY = {"model": "sha256:abc", "build": "b1", "context": {"n_batch": 512}}


def writer(data: bytes):
    def write(path: Path) -> bool:
        path.write_bytes(data)
        return True

    return write


def saved(store: PrefixStore, tokens: list[int], data: bytes) -> Path:
    path = store.save(state_key(IDENTITY, tokens), writer(data))
    assert path is not None
    return path


def test_a_saved_state_is_found_by_its_key_with_its_bytes_unchanged(tmp_path):
    store = PrefixStore(tmp_path / "states", cap=1 << 20)
    key = state_key(IDENTITY, [1, 2, 3])
    path = store.save(key, writer(b"ggsq" + bytes(range(200))))
    assert path is not None and path.name.startswith(key + "-") and path.suffix == ".ggsq"
    assert store.find(key) == path
    assert path.read_bytes() == b"ggsq" + bytes(range(200))
    assert store.find(state_key(IDENTITY, [1, 2, 4])) is None
    assert [p.name for p in (tmp_path / "states").iterdir()] == [path.name]  # no leftovers


def test_the_key_covers_every_token_and_every_part_of_the_identity():
    base = state_key(IDENTITY, [1, 2, 3])
    assert base == state_key(dict(IDENTITY), [1, 2, 3])
    assert base != state_key(IDENTITY, [1, 2, 3, 4])
    assert base != state_key(IDENTITY, [1, 2, 5])
    for field, value in (("model", "sha256:abd"), ("build", "b2"), ("context", {"n_batch": 256})):
        assert base != state_key({**IDENTITY, field: value}, [1, 2, 3])


@pytest.mark.parametrize("damage", ["flip", "truncate", "empty", "append"])
def test_a_damaged_file_is_deleted_and_reported_missing(tmp_path, damage):
    store = PrefixStore(tmp_path, cap=1 << 20)
    path = saved(store, [7, 8], b"ggsq" + os.urandom(4096))
    data = bytearray(path.read_bytes())
    if damage == "flip":
        data[2000] ^= 0x01
    elif damage == "truncate":
        data = data[:1000]
    elif damage == "empty":
        data = bytearray()
    else:
        data += b"x"
    path.write_bytes(bytes(data))
    assert store.find(state_key(IDENTITY, [7, 8])) is None
    assert not path.exists()
    # ... and the next save of the same prefix is kept again.
    again = saved(store, [7, 8], b"ggsq-fresh")
    assert store.find(state_key(IDENTITY, [7, 8])) == again


def test_a_missing_file_or_folder_is_just_a_miss(tmp_path):
    assert PrefixStore(tmp_path / "never-made", cap=1 << 20).find("0" * 40) is None
    store = PrefixStore(tmp_path, cap=1 << 20)
    path = saved(store, [1], b"state")
    path.unlink()
    assert store.find(state_key(IDENTITY, [1])) is None


def test_least_recently_used_files_go_first_under_the_cap(tmp_path):
    store = PrefixStore(tmp_path, cap=2500)
    first = saved(store, [1], b"a" * 1000)
    time.sleep(0.01)
    second = saved(store, [2], b"b" * 1000)
    time.sleep(0.01)
    assert store.find(state_key(IDENTITY, [1])) == first  # the first is used again: now newest
    time.sleep(0.01)
    third = saved(store, [3], b"c" * 1000)
    assert first.exists() and third.exists()
    assert not second.exists()
    assert store.files() == [first, third]


def test_a_state_larger_than_the_whole_cap_is_not_kept(tmp_path):
    store = PrefixStore(tmp_path, cap=100)
    assert store.save(state_key(IDENTITY, [1]), writer(b"x" * 101)) is None
    assert list(tmp_path.iterdir()) == []


def test_a_failed_write_leaves_nothing_behind(tmp_path):
    store = PrefixStore(tmp_path, cap=1 << 20)

    def half_written(path: Path) -> bool:
        path.write_bytes(b"half")
        return False  # llama.cpp reported an error

    def raising(path: Path) -> bool:
        raise OSError(28, "No space left on device")

    assert store.save("k" * 40, half_written) is None
    assert store.save("k" * 40, raising) is None
    assert list(tmp_path.iterdir()) == []


def test_an_unwritable_folder_never_raises(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    store = PrefixStore(blocker / "states", cap=1 << 20)
    assert store.save("k" * 40, writer(b"state")) is None
    assert store.find("k" * 40) is None
    store.evict()
    assert store.files() == []


def test_partial_files_of_a_dead_writer_are_cleaned_up_but_live_ones_kept(tmp_path):
    store = PrefixStore(tmp_path, cap=1 << 20)
    dead = tmp_path / ".partial-dead.ggsq"
    live = tmp_path / ".partial-live.ggsq"
    dead.write_bytes(b"old")
    live.write_bytes(b"new")
    old = time.time() - 2 * 3600
    os.utime(dead, (old, old))
    saved(store, [1], b"state")
    assert not dead.exists() and live.exists()
    assert [p.name.startswith(".") for p in store.files()] == [False]


def test_a_second_state_for_the_same_key_replaces_the_first(tmp_path):
    store = PrefixStore(tmp_path, cap=1 << 20)
    first = saved(store, [1], b"one")
    second = saved(store, [1], b"two")
    assert first != second and not first.exists()
    assert store.find(state_key(IDENTITY, [1])) == second


def test_settings_from_the_environment(monkeypatch):
    monkeypatch.delenv(prefix_store.ENV_STORE, raising=False)
    monkeypatch.delenv(prefix_store.ENV_CAP_MB, raising=False)
    assert prefix_store.enabled()
    assert prefix_store.cap_bytes() == prefix_store.DEFAULT_CAP_MB * 1024 * 1024
    for off in ("off", "0", "no", "FALSE"):
        monkeypatch.setenv(prefix_store.ENV_STORE, off)
        assert not prefix_store.enabled()
    monkeypatch.setenv(prefix_store.ENV_CAP_MB, "1.5")
    assert prefix_store.cap_bytes() == int(1.5 * 1024 * 1024)
    monkeypatch.setenv(prefix_store.ENV_CAP_MB, "lots")
    assert prefix_store.cap_bytes() == prefix_store.DEFAULT_CAP_MB * 1024 * 1024


def test_a_model_file_is_known_by_its_recorded_checksum_else_by_its_size_time_and_ends(tmp_path):
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF" + bytes(100_000))
    cheap = model_fingerprint(gguf)
    assert cheap.startswith("size:100004:")
    assert model_fingerprint(gguf) == cheap
    gguf.write_bytes(b"GGUF" + bytes(99_999) + b"\x01")  # same size, other bytes, new mtime
    assert model_fingerprint(gguf) != cheap
    # A file verified by `thinkchain models` has its SHA-256 on record: that is its identity,
    # as long as the file has not changed since.
    stat = gguf.stat()
    marker = gguf.with_name(gguf.name + ".verified")
    marker.write_text(
        json.dumps(
            {"sha256": "ab" * 32, "stat": {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}}
        )
    )
    assert models.recorded_sha256(gguf) == "ab" * 32
    assert model_fingerprint(gguf) == "sha256:" + "ab" * 32
    os.utime(gguf, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert models.recorded_sha256(gguf) is None
    assert model_fingerprint(gguf).startswith("size:")
