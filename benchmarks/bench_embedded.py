"""The embedded model: decode speed with and without the step schema, and KV reuse per step.

Side by side in one run, on the same prompt, interleaved so that machine noise hits every
variant alike:

* raw llama-cpp-python (``Llama.generate``), unconstrained: the reference;
* raw llama-cpp-python with its own JSON-schema grammar (``LlamaGrammar``);
* thinkchain's backend, unconstrained;
* thinkchain's backend with the step schema enforced by the llguidance mask.

Then real chains (iterative JSON steps) on a few GSM8K questions: decode speed through the
chain, and for every call the prompt tokens evaluated against the tokens that were new since
the previous call.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from benchmarks._report import gsm8k_items, stats, write_section
from thinkchain import Chain, ChainSettings
from thinkchain.chain.backend import GenerationRequest, TextChunk
from thinkchain.chain.prompts import prompt
from thinkchain.chain.steps import STEP_SCHEMA, StepFormatError, parse_step
from thinkchain.models.backends.kv_slots import common_prefix as _common_prefix
from thinkchain.models.backends.llamacpp import LlamaCppBackend
from thinkchain.models.embedded import DEFAULT_MODEL, path_of

QUESTION = (
    "Explain in detail, with several paragraphs, how to count the letters r in the word "
    "strawberry, and why people and language models get it wrong."
)


def messages() -> list[dict[str, str]]:
    return [
        {"role": "system", "content": prompt("en", "step_system")},
        {"role": "user", "content": QUESTION},
    ]


def tokens_per_second(stamps: list[float]) -> float:
    """Decode speed from the arrival times of tokens, not counting the first (prompt time)."""
    if len(stamps) < 3:
        return float("nan")
    return (len(stamps) - 1) / (stamps[-1] - stamps[0])


def raw_run(llama, tokens: list[int], n: int, grammar=None) -> tuple[float, str]:
    llama.reset()
    stamps, pieces = [], []
    eos = llama.token_eos()
    for token in llama.generate(tokens, temp=0.2, grammar=grammar):
        if token == eos:
            break
        stamps.append(time.perf_counter())
        pieces.append(llama.detokenize([token]))
        if len(stamps) >= n:
            break
    return tokens_per_second(stamps), b"".join(pieces).decode("utf-8", "replace")


def ours_run(backend: LlamaCppBackend, n: int, schema) -> tuple[float, str, int]:
    request = GenerationRequest(messages(), max_tokens=n, temperature=0.2, schema=schema, seed=1)
    stamps, pieces = [], []
    for chunk in backend.generate_sync(request):
        if isinstance(chunk, TextChunk):
            stamps.append(time.perf_counter())
            pieces.append(chunk.text)
    usage = backend.last_usage
    return tokens_per_second(stamps), "".join(pieces), usage.completion_tokens if usage else 0


def valid(text: str) -> bool:
    try:
        parse_step(text)
        return True
    except StepFormatError:
        return False


def mask_cost_us(backend: LlamaCppBackend) -> float:
    """Time to compute and apply the schema mask to one row of logits, in microseconds."""
    masker = backend._get_masker()
    matcher = masker.matcher(masker.grammar_for_schema(STEP_SCHEMA))
    logits = np.zeros(backend._llama.n_vocab(), dtype=np.float32)
    started = time.perf_counter()
    for _ in range(200):
        matcher.apply_to(logits)
    return (time.perf_counter() - started) / 200 * 1e6


@dataclass
class Call:
    request: Any  # the engine request: its prompt tokens, and ``cached`` once admitted
    kv_before: list[int]  # what the KV cache held when the call was made
    started: float
    ended: float = float("nan")  # when the engine emitted the end of the reply


def record_calls(backend: LlamaCppBackend) -> list[Call]:
    """From now on, keep every call the backend hands to its engine, with timings.

    The KV snapshot is taken once the previous request has left the decode thread, so it
    holds that request's prompt and every reply token it decoded.
    """
    calls: list[Call] = []
    make = backend._engine_request

    def recording(request, emit, stop):
        deadline = time.monotonic() + 10
        while backend.engine._active() and time.monotonic() < deadline:
            time.sleep(0.005)
        call = Call(None, backend.engine.cached_tokens[0], time.perf_counter())

        def timed_emit(item):
            if item is None:
                call.ended = time.perf_counter()
            emit(item)

        call.request = make(request, timed_emit, stop)
        calls.append(call)
        return call.request

    backend._engine_request = recording  # type: ignore[method-assign]
    return calls


def chain_reuse(backend: LlamaCppBackend, questions: list[str], steps: int) -> dict:
    """Real chains: decode speed, engine overhead, and per call evaluated against new tokens.

    "New" is exact: the call's prompt tokens that were not already in the KV cache, i.e. not
    a prefix shared with the previous call's prompt and the reply tokens it decoded (a reply
    cut or discarded by the chain is not part of the next prompt, and counts as not shared).
    Overhead is the chain's wall time not spent inside a backend call (from the request to
    the engine's end of reply): chunk delivery, parsing, guards, events.
    """
    ratios, per_call, speeds, overheads = [], [], [], []
    calls = record_calls(backend)
    for number, question in enumerate(questions, start=1):
        chain = Chain(
            backend, ChainSettings(mode="iterative", max_steps=steps, min_steps=steps, seed=0)
        )
        first = len(calls)
        started = time.perf_counter()
        result = chain.run(question)
        wall = time.perf_counter() - started
        inside = sum(c.ended - c.started for c in calls[first:])
        overheads.append((wall - inside) / wall)
        for step in result.steps:
            if step.ttft is not None and step.seconds > step.ttft:
                speeds.append((step.usage.completion_tokens - 1) / (step.seconds - step.ttft))
        for number_in_chain, call in enumerate(calls[first:], start=1):
            prompt_tokens = list(call.request.tokens)
            new = len(prompt_tokens) - _common_prefix(prompt_tokens, call.kv_before)
            evaluated = len(prompt_tokens) - call.request.cached
            per_call.append((number, number_in_chain, len(prompt_tokens), new, evaluated))
            ratios.append(evaluated / max(1, new))
    return {"ratios": ratios, "per_call": per_call, "speeds": speeds, "overheads": overheads}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--chains", type=int, default=5)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--model-path", default=str(path_of(DEFAULT_MODEL)))
    args = parser.parse_args()

    import os

    from llama_cpp import Llama, LlamaGrammar

    threads = os.cpu_count() or 1
    raw = Llama(
        args.model_path, n_ctx=4096, n_threads=threads, n_threads_batch=threads, verbose=False
    )
    ours = LlamaCppBackend(args.model_path, n_ctx=4096)
    tokens = ours._tokenize(ours.render(messages()))
    grammar = LlamaGrammar.from_json_schema(json.dumps(STEP_SCHEMA), verbose=False)
    ours_run(ours, 8, STEP_SCHEMA)  # build the mask's tokenizer (once per process, ~1 s)

    results: dict[str, list[float]] = {k: [] for k in ("raw", "raw_grammar", "ours", "masked")}
    valid_count = {"raw_grammar": 0, "masked": 0}
    masked_tokens = []
    for run in range(args.runs):
        speed, _ = raw_run(raw, tokens, args.tokens)
        results["raw"].append(speed)
        speed, text = raw_run(raw, tokens, args.tokens, grammar=grammar)
        results["raw_grammar"].append(speed)
        valid_count["raw_grammar"] += valid(text)
        speed, _, _ = ours_run(ours, args.tokens, None)
        results["ours"].append(speed)
        speed, text, n = ours_run(ours, args.tokens * 3, STEP_SCHEMA)
        results["masked"].append(speed)
        valid_count["masked"] += valid(text)
        masked_tokens.append(n)
        print(
            f"run {run + 1}: " + ", ".join(f"{k} {v[-1]:.1f}" for k, v in results.items()),
            flush=True,
        )

    # Validity at a higher temperature, where an unconstrained model strays most.
    extra_valid = 0
    extra = 10
    for seed in range(extra):
        request = GenerationRequest(
            messages(), max_tokens=600, temperature=1.0, schema=STEP_SCHEMA, seed=100 + seed
        )
        text = "".join(c.text for c in ours.generate_sync(request) if isinstance(c, TextChunk))
        extra_valid += valid(text)
    cost = [mask_cost_us(ours) for _ in range(5)]

    questions = [item["question"] for item in gsm8k_items()]
    reuse = chain_reuse(ours, questions[: args.chains], args.steps)
    ref = statistics.median(results["raw"])
    ratio_masked = [m / r for m, r in zip(results["masked"], results["raw"], strict=True)]
    ratio_grammar = [g / r for g, r in zip(results["raw_grammar"], results["raw"], strict=True)]
    ratio_ours = [o / r for o, r in zip(results["ours"], results["raw"], strict=True)]
    table = "\n".join(
        [
            f"| llama-cpp-python `Llama.generate`, unconstrained | {stats(results['raw'])} | 1.00 |"
            " |",
            f"| llama-cpp-python, its own JSON-schema grammar | {stats(results['raw_grammar'])} | "
            f"{stats(ratio_grammar)} | {valid_count['raw_grammar']}/{args.runs} |",
            f"| thinkchain backend, unconstrained | {stats(results['ours'])} | "
            f"{stats(ratio_ours)} | |",
            f"| thinkchain backend, step schema (llguidance mask) | {stats(results['masked'])} | "
            f"{stats(ratio_masked)} | {valid_count['masked']}/{args.runs} |",
        ]
    )
    rows = "\n".join(
        f"| {n} | {i} | {prompt_tokens} | {new} | {evaluated} | {evaluated / max(1, new):.2f} |"
        for n, i, prompt_tokens, new, evaluated in reuse["per_call"]
        if n <= 2
    )
    body = f"""
Prompt: the step system prompt and a question that asks for a long step ({len(tokens)} prompt
tokens); {args.tokens} tokens per unconstrained run, the schema runs stop when the JSON object
is complete ({stats(masked_tokens, "{:.0f}")} tokens). Decode speed = tokens after the first
/ time from the first to the last token. {args.runs} interleaved runs; min / median / max.

| generation | tokens/s | vs raw unconstrained | valid steps |
|---|---|---|---|
{table}

At temperature 1.0, {extra_valid}/{extra} schema-enforced steps were valid JSON steps. The mask
costs {stats(cost, "{:.0f}")} µs per token to compute and apply (llguidance's token mask over
the {ours._llama.n_vocab():,}-token vocabulary, applied in a llama.cpp sampler stage), against
about {1e6 / ref:,.0f} µs per decoded token.

**Through a chain.** {args.chains} GSM8K questions, {args.steps} iterative JSON steps each plus
the answer: decode speed inside the chain {stats(reuse["speeds"], "{:.1f}")} tokens/s (step
time after the first token), against {ref:.1f} tokens/s raw. Engine overhead (the chain's
wall time outside backend calls: chunk delivery, parsing, guards, events) is
{stats([o * 100 for o in reuse["overheads"]], "{:.2f}")} % of each chain's wall time (goal < 1 %).

**KV reuse.** For every call (steps, retries and the answer), the prompt tokens the model
evaluated against the tokens that were new: those of its prompt not already in the KV cache,
which holds the previous call's prompt and the reply tokens it decoded. So the chat markup
around the previous reply is new, and so is that reply's last sampled token (sampled, never
decoded); a reply the chain discarded (a repeated step) is not in the next prompt, and
what follows the point where the prompts part is new. A chain's first call finds the previous
chain's prompt cached, so only the system prompt is shared. Evaluated / new over all
{len(reuse["ratios"])} calls: {stats(reuse["ratios"])} (goal ≤ 1.1). The first two chains' calls:

| chain | call | prompt tokens | new | evaluated | evaluated / new |
|---|---|---|---|---|---|
{rows}
"""
    write_section("embedded", "Embedded model: schema-enforced decoding and KV reuse", body)
    print(body)


if __name__ == "__main__":
    main()
