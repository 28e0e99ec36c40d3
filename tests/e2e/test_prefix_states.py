"""Saved prompt-prefix states on the real (small) model: loaded instead of evaluated, with the
same greedy tokens; a damaged or foreign file is rebuilt silently; prefixes prepared ahead of
time stay resident side by side; a new `thinkchain ask` process loads what the last one saved.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from thinkchain import Chain, ChainSettings
from thinkchain.chain.backend import GenerationRequest, TextChunk
from thinkchain.chain.prompts import prompt
from thinkchain.models.backends.llamacpp import LlamaCppBackend

QUESTION = "How many letters r are in the word strawberry?"
# Greedy, short and without code steps (no sandbox needed): the chain is a pure function of
# the model's logits, so any difference the loaded state made would show in its tokens.
GREEDY = ChainSettings(
    mode="single-pass",
    lang="en",
    tools=(),
    temperature=0.0,
    seed=1,
    max_steps=2,
    min_steps=0,
    max_tokens_per_step=48,
    final_max_tokens=48,
)


@pytest.fixture
def store_dir(tmp_path):
    return tmp_path / "prefix-states"


def backend(path, store_dir, **kwargs):
    return LlamaCppBackend(path, n_ctx=2048, prefix_store_dir=store_dir, **kwargs)


class Recorded:
    """The backend, recording every reply's text and usage (a chain may drop and redo a
    reply: its own usage figures would not show the first request's)."""

    def __init__(self, inner: LlamaCppBackend) -> None:
        self.inner = inner
        self.name, self.model = inner.name, inner.model
        self.replies: list[tuple[str, int]] = []
        self.usages: list = []

    def context_window(self):
        return self.inner.context_window()

    def count_tokens(self, messages):
        return self.inner.count_tokens(messages)

    async def generate(self, request):
        text = []
        async for chunk in self.inner.generate(request):
            if isinstance(chunk, TextChunk):
                text.append(chunk.text)
            else:
                self.replies.append(("".join(text), chunk.usage.completion_tokens))
                self.usages.append(chunk.usage)
            yield chunk


def run_chain(engine_backend: LlamaCppBackend, settings: ChainSettings = GREEDY) -> Recorded:
    recorded = Recorded(engine_backend)
    result = Chain(recorded, settings).run(QUESTION)
    assert result.ok, result.error
    return recorded


def test_a_loaded_prefix_gives_the_same_greedy_chain_as_an_evaluated_one(
    small_model_path, store_dir
):
    first = backend(small_model_path, store_dir)
    try:
        prefix = first.system_prefix(prompt("en", "single_pass_system"))
        assert prefix is not None and len(prefix.tokens) > 200
        evaluated = run_chain(first)
        assert first.prefix_store is not None and len(first.prefix_store.files()) == 1
    finally:
        first.close()
    assert evaluated.usages[0].cached_tokens == 0  # this process evaluated the prefix

    # A new engine, laid out differently (two sequences, another context size): it loads the
    # state the first one saved.
    second = LlamaCppBackend(small_model_path, n_ctx=4096, n_parallel=2, prefix_store_dir=store_dir)
    try:
        loaded = run_chain(second)
    finally:
        second.close()
    assert loaded.usages[0].cached_tokens >= len(prefix.tokens)
    # Every reply of the chain, token for token (count and text), is the same.
    assert loaded.replies == evaluated.replies


@pytest.mark.parametrize("damage", ["corrupt", "foreign"])
def test_a_damaged_or_foreign_state_file_is_rebuilt_silently(small_model_path, store_dir, damage):
    system_en = prompt("en", "single_pass_system")
    system_zh = prompt("zh", "single_pass_system")
    first = backend(small_model_path, store_dir)
    try:
        reference = run_chain(first)  # evaluates the English prefix, and saves it
        first.prepare_prefixes([system_zh])  # another prefix's state, for the foreign file
        store = first.prefix_store
        assert store is not None
        wait_until(lambda: len(store.files()) == 2)
        key_en = first.engine.pins.key(first.system_prefix(system_en))
    finally:
        first.close()
    [en_file] = [p for p in store.files() if p.name.startswith(key_en)]
    [zh_file] = [p for p in store.files() if p != en_file]
    if damage == "corrupt":
        data = bytearray(en_file.read_bytes())
        data[len(data) // 2] ^= 0x40  # one flipped bit in the middle of the KV data
        en_file.write_bytes(bytes(data))
    else:
        # A sound llama.cpp state, but of another prefix, under the English key (with a
        # digest that matches its bytes): llama.cpp would load it; its tokens give it away.
        from thinkchain.models.backends.prefix_store import SUFFIX, file_digest

        en_file.unlink()
        fake = store.folder / f"{key_en}-{'0' * 40}{SUFFIX}"
        fake.write_bytes(zh_file.read_bytes())
        fake.rename(store.folder / f"{key_en}-{file_digest(fake)}{SUFFIX}")

    second = backend(small_model_path, store_dir)
    try:
        rebuilt = run_chain(second)
    finally:
        second.close()
    assert rebuilt.usages[0].cached_tokens == 0  # evaluated again, not loaded
    assert rebuilt.replies == reference.replies
    # The bad file is gone and a good one saved in its place; the other prefix's is untouched.
    [again] = [p for p in store.files() if p.name.startswith(key_en)]
    assert again.read_bytes() != zh_file.read_bytes()
    assert zh_file.exists()


def wait_until(condition, timeout=600.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_prepared_prefixes_stay_resident_side_by_side(small_model_path, store_dir):
    systems = [prompt(lang, "single_pass_system") for lang in ("en", "zh")]
    engine_backend = backend(small_model_path, store_dir, n_pinned=2)
    try:
        prefixes = [engine_backend.system_prefix(s) for s in systems]
        engine_backend.prepare_prefixes(systems)

        def pinned():
            return engine_backend.engine.cached_tokens[1:]

        wait_until(lambda: sorted(map(len, pinned())) == sorted(len(p.tokens) for p in prefixes))
        assert {tuple(t) for t in pinned()} == {p.tokens for p in prefixes}
        store = engine_backend.prefix_store
        assert store is not None
        wait_until(lambda: len(store.files()) == 2)  # saved right after evaluating
        # A chain in each language finds its prefix resident: neither evicted the other.
        for lang, prefix in zip(("en", "zh"), prefixes, strict=True):
            recorded = run_chain(engine_backend, GREEDY.model_copy(update={"lang": lang}))
            assert recorded.usages[0].cached_tokens >= len(prefix.tokens)
        assert {tuple(t) for t in pinned()} == {p.tokens for p in prefixes}
    finally:
        engine_backend.close()


def test_a_client_system_prompt_passed_through_is_never_saved(small_model_path, store_dir):
    engine_backend = backend(small_model_path, store_dir)
    try:
        request = GenerationRequest(
            [
                {"role": "system", "content": prompt("en", "single_pass_system")},
                {"role": "user", "content": QUESTION},
            ],
            max_tokens=4,
            temperature=0.0,
            purpose="plain",  # the proxy's pass-through of a client's own messages
        )
        list(engine_backend.generate_sync(request))
        assert engine_backend.prefix_store is not None
        assert engine_backend.prefix_store.files() == []
    finally:
        engine_backend.close()


def test_a_new_ask_process_loads_the_prefix_the_last_one_saved(small_model_path, tmp_path):
    env = {**os.environ, "THINKCHAIN_CACHE_DIR": str(tmp_path / "cache")}
    args = [
        sys.executable, "-m", "thinkchain", "ask", "--model-path", str(small_model_path),
        "--no-history", "--json", "--tools", "none", "--lang", "en", "--temperature", "0",
        "--max-steps", "1", "--min-steps", "0", "--max-tokens", "32", QUESTION,
    ]  # fmt: skip
    runs = []
    for _ in range(2):
        proc = subprocess.run(args, capture_output=True, text=True, timeout=600, env=env)
        assert proc.returncode in (0, 1), proc.stderr
        runs.append(json.loads(proc.stdout))
    # Greedy: both processes run the same chain, request for request; the second one did not
    # evaluate the system prompt and layout (~250 tokens): it loaded them.
    evaluated = [doc["usage"]["prompt_tokens"] - doc["usage"]["cached_tokens"] for doc in runs]
    assert runs[0]["answer"] == runs[1]["answer"]
    assert evaluated[0] - evaluated[1] > 200
    assert list((tmp_path / "cache" / "prefix-states").glob("*.ggsq"))


EXIT_WHILE_PREPARING = """
import atexit, sys, threading, time

@atexit.register  # registered first, so it runs last: after thinkchain's own exit hook
def decode_thread_left() -> None:
    alive = [t for t in threading.enumerate() if t.name == "thinkchain-decode" and t.is_alive()]
    print("decode thread at exit:", "running" if alive else "stopped", flush=True)

from thinkchain.chain.settings import MODES
from thinkchain.models.backends.llamacpp import LlamaCppBackend
from thinkchain.models.prefixes import prepare_in_background
backend = LlamaCppBackend(sys.argv[1], n_ctx=4096, n_parallel=2)
# Every mode, tools on and off, both languages: twenty prefixes, so the decode thread is
# still evaluating one when the process leaves.
prepare_in_background(backend, lambda: [(), ("python",)], MODES)
time.sleep(float(sys.argv[2]))
print("leaving", flush=True)
"""


def test_a_process_that_leaves_while_prefixes_are_prepared_exits_cleanly(default_model_path):
    # The page or the proxy stopped a few seconds after start, with the store off: the
    # decode thread was still evaluating a prefix while the interpreter freed the model
    # under it, and the process died of a segmentation fault on its way out (in 3 of 4
    # such exits here, so two are tried; the thread still running at exit is the cause, and
    # is checked every time).
    for seconds in ("2", "3"):
        done = subprocess.run(
            [sys.executable, "-c", EXIT_WHILE_PREPARING, str(default_model_path), seconds],
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "THINKCHAIN_PREFIX_CACHE": "off"},
        )
        assert done.returncode == 0, (seconds, done.returncode, done.stderr[-1000:])
        assert "leaving" in done.stdout
        assert "decode thread at exit: stopped" in done.stdout, done.stdout
