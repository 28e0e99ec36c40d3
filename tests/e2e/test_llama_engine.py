"""The in-process engine decoding several sequences together, on the real small model."""

from __future__ import annotations

import asyncio
import threading

import pytest

from thinkchain import Chain, ChainSettings
from thinkchain.chain.backend import ContextOverflow, GenerationRequest, TextChunk
from thinkchain.chain.steps import STEP_SCHEMA, parse_step
from thinkchain.chain.strategies import SelfConsistency
from thinkchain.models.backends.llamacpp import LlamaCppBackend

MESSAGES = [
    {"role": "system", "content": "Reply with one JSON reasoning step."},
    {"role": "user", "content": "How many letters r are in the word strawberry?"},
]


@pytest.fixture(scope="module")
def parallel_backend(small_model_path):
    backend = LlamaCppBackend(small_model_path, n_parallel=4, n_ctx=4096)
    yield backend
    backend.close()


async def _collect(backend, request):
    text, completion = [], None
    async for chunk in backend.generate(request):
        if isinstance(chunk, TextChunk):
            text.append(chunk.text)
        else:
            completion = chunk
    return "".join(text), completion


def test_concurrent_generations_are_valid_and_share_the_prompt(parallel_backend):
    async def main():
        requests = [
            GenerationRequest(MESSAGES, max_tokens=300, temperature=0.8, schema=STEP_SCHEMA, seed=i)
            for i in range(4)
        ]
        return await asyncio.gather(*(_collect(parallel_backend, r) for r in requests))

    results = asyncio.run(main())
    prompt_tokens = results[0][1].usage.prompt_tokens
    for text, completion in results:
        assert completion.finish_reason == "stop"
        parse_step(text)  # every sequence kept to the schema while decoding side by side
        assert completion.schema_enforced
    # The shared prompt was evaluated once: at most one sequence paid for all of it.
    cached = sorted(c.usage.cached_tokens for _, c in results)
    assert cached[1] >= prompt_tokens - 1


def test_cancelling_one_sequence_leaves_the_others_running(parallel_backend):
    stop = threading.Event()
    seen: list[str] = []

    def cancelled_run():
        request = GenerationRequest(MESSAGES, max_tokens=400, temperature=0.5, seed=1)
        for chunk in parallel_backend.generate_sync(request, stop):
            if isinstance(chunk, TextChunk):
                seen.append(chunk.text)
                if len(seen) == 3:
                    stop.set()
            else:
                seen.append(f"<{chunk.finish_reason}>")

    worker = threading.Thread(target=cancelled_run)
    worker.start()
    request = GenerationRequest(MESSAGES, max_tokens=40, temperature=0.5, seed=2)
    chunks = list(parallel_backend.generate_sync(request))
    worker.join(timeout=120)
    assert chunks[-1].finish_reason in ("stop", "length")
    assert seen[-1] == "<cancelled>" and len(seen) <= 6


def test_prompt_larger_than_the_context_is_refused(small_model_path):
    backend = LlamaCppBackend(small_model_path, n_ctx=256)
    try:
        request = GenerationRequest([{"role": "user", "content": "word " * 400}], max_tokens=8)
        with pytest.raises(ContextOverflow):
            list(backend.generate_sync(request))
    finally:
        backend.close()


def test_self_consistency_runs_its_samples_side_by_side(parallel_backend):
    settings = ChainSettings(mode="single-pass", max_tokens_per_step=120, min_steps=0)
    # No tie-break samples: three different answers would draw more chains, and this test is
    # about three samples decoding side by side.
    sc = SelfConsistency(parallel_backend, settings, k=3, early_stop="off", tie_breaks=0)
    assert sc.parallel  # the backend decodes several sequences at once
    outcome = sc.run("How many letters r are in the word strawberry?")
    assert len(outcome.chains) == 3
    # Samples after the first found the system prompt and question already evaluated.
    first_calls = [s.steps[0].usage if s.steps else s.answer.usage for s in outcome.chains]
    assert sum(1 for u in first_calls if u.cached_tokens > 0) >= 2


def test_chains_on_a_parallel_backend_still_reuse_their_own_kv(parallel_backend):
    # One call per step (iterative): a single-pass chain may emit several steps in one
    # generation, and those steps carry no prompt of their own to compare against.
    settings = ChainSettings(mode="iterative", max_steps=3, min_steps=3, max_tokens_per_step=120)
    chain = Chain(parallel_backend, settings)
    result = chain.run("How many letters r are in the word strawberry?")
    assert result.ok
    for step in result.steps[1:]:
        assert step.usage.evaluated_prompt_tokens < step.usage.prompt_tokens / 2


def test_clearing_the_cache_right_after_a_halted_generation_leaves_nothing_cached(
    parallel_backend,
):
    request = GenerationRequest(MESSAGES, max_tokens=200, temperature=0.5, seed=3)
    for chunk in parallel_backend.generate_sync(request):
        if isinstance(chunk, TextChunk):
            request.halt.set()  # the caller has what it needs; the engine finishes on its own
            break
    parallel_backend.engine.clear_cache()
    assert all(tokens == [] for tokens in parallel_backend.engine.cached_tokens)
    again = GenerationRequest(MESSAGES, max_tokens=1, temperature=0.0)
    completion = list(parallel_backend.generate_sync(again))[-1]
    assert completion.usage.cached_tokens == 0  # the next call starts cold
