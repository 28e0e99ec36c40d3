"""How many sequences the embedded model should decode together on this machine.

The embedded backend decodes its concurrent requests in one llama.cpp batch, over ``n_parallel``
slots.  Eight free-text generations (different GSM8K questions, sampled, a fixed token budget)
are sent at once to the embedded default model loaded with 1, 2, 4 and 8 slots; requests beyond
the slots wait for a free one.  What counts is the generated tokens per second of the eight
together: the throughput a concurrent eval or a self-consistency vote gets.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._report import gsm8k_items, stats, write_section
from thinkchain.chain.backend import Completion, GenerationRequest
from thinkchain.models.backends.llamacpp import LlamaCppBackend
from thinkchain.models.embedded import DEFAULT_MODEL, path_of


async def one(backend: LlamaCppBackend, question: str, tokens: int, seed: int) -> int:
    request = GenerationRequest(
        [{"role": "user", "content": f"{question}\nThink step by step, in detail."}],
        max_tokens=tokens,
        temperature=0.7,
        seed=seed,
        purpose="direct",
    )
    generated = 0
    async for chunk in backend.generate(request):
        if isinstance(chunk, Completion):
            generated = chunk.usage.completion_tokens
    return generated


async def together(backend: LlamaCppBackend, qs: list[str], tokens: int, run: int) -> float:
    """Generated tokens per second of every request sent at once."""
    started = time.perf_counter()
    counts = await asyncio.gather(
        *(one(backend, q, tokens, seed=100 * run + i) for i, q in enumerate(qs))
    )
    return sum(counts) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--requests", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--slots", default="1,2,4,8")
    parser.add_argument("--model-path", default=str(path_of(DEFAULT_MODEL)))
    args = parser.parse_args()

    qs = [item["question"] for item in gsm8k_items()[: args.requests]]
    slot_counts = [int(s) for s in args.slots.split(",")]
    speeds: dict[int, list[float]] = {}
    for slots in slot_counts:
        backend = LlamaCppBackend(args.model_path, n_ctx=4096, n_parallel=slots)
        try:
            asyncio.run(together(backend, qs[:1], 8, run=99))  # warm-up: first decode, threads
            speeds[slots] = []
            for run in range(args.runs):
                speeds[slots].append(asyncio.run(together(backend, qs, args.tokens, run)))
                print(f"{slots} slots, run {run + 1}: {speeds[slots][-1]:.1f} tok/s", flush=True)
        finally:
            backend.close()

    base = statistics.median(speeds[slot_counts[0]])
    rows = "\n".join(
        f"| {slots} | {stats(speeds[slots], '{:.1f}')} | "
        f"{statistics.median(speeds[slots]) / base:.2f} |"
        for slots in slot_counts
    )
    body = f"""
The embedded default model ({DEFAULT_MODEL.name}), {args.requests} generations of up to
{args.tokens} tokens sent at once (different GSM8K questions, temperature 0.7), the model
loaded with each number of slots in turn; {args.runs} runs each, min / median / max of the
generated tokens per second of all {args.requests} together.

| slots | generated tokens / s | against {slot_counts[0]} slot(s), median |
|---:|---:|---:|
{rows}

`thinkchain eval` loads the model with a slot for every sequence it runs at once
(`--concurrency` items, times K samples when an sc mode runs), at most 8.
"""
    write_section("parallel", "Slots: sequences decoded together", body)
    print(body)


if __name__ == "__main__":
    main()
