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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from benchmarks._report import stats, write_section
from thinkchain import Chain, ChainSettings
from thinkchain.backends.base import GenerationRequest, TextChunk
from thinkchain.backends.llamacpp import LlamaCppBackend
from thinkchain.models import DEFAULT_MODEL, path_of
from thinkchain.prompts import prompt
from thinkchain.steps import STEP_SCHEMA, StepFormatError, parse_step

GSM8K = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "gsm8k_train_500.jsonl"
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


def chain_reuse(backend: LlamaCppBackend, questions: list[str], steps: int) -> dict:
    ratios, ratios_strict, per_call, speeds = [], [], [], []
    for number, question in enumerate(questions, start=1):
        chain = Chain(
            backend, ChainSettings(mode="iterative", max_steps=steps, min_steps=steps, seed=0)
        )
        result = chain.run(question)
        # (usage, attempts): a step retried sums several calls and says nothing per call.
        calls = [(s.usage, s.attempts) for s in result.steps]
        if result.answer:
            calls.append((result.answer.usage, 1))
        for step in result.steps:
            if step.ttft is not None and step.seconds > step.ttft:
                speeds.append((step.usage.completion_tokens - 1) / (step.seconds - step.ttft))
        for i in range(1, len(calls)):
            (prev, prev_attempts), (cur, cur_attempts) = calls[i - 1], calls[i]
            if prev_attempts != 1 or cur_attempts != 1:
                continue
            # Not yet in the KV cache: the chat markup around the previous reply, and that
            # reply's last sampled token (sampled, never decoded).
            new = cur.prompt_tokens - (prev.prompt_tokens + prev.completion_tokens) + 1
            new_strict = new - 1
            evaluated = cur.evaluated_prompt_tokens
            per_call.append((number, i + 1, cur.prompt_tokens, new, evaluated))
            ratios.append(evaluated / max(1, new))
            ratios_strict.append(evaluated / max(1, new_strict))
    return {
        "ratios": ratios,
        "ratios_strict": ratios_strict,
        "per_call": per_call,
        "speeds": speeds,
    }


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

    questions = [
        json.loads(line)["question"]
        for line in GSM8K.read_text(encoding="utf-8").split("\n")
        if line.strip()
    ]
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
time after the first token), against {ref:.1f} tokens/s raw.

**KV reuse.** For every call after the first, the prompt tokens the model evaluated against the
tokens that were new since the previous call: the chat markup around the previous reply plus
that reply's last sampled token, which llama.cpp samples but never decodes. Evaluated / new over
all calls: {stats(reuse["ratios"])} (goal ≤ 1.1); counting only the markup as new (excluding
the sampled token): {stats(reuse["ratios_strict"])}. The first two chains' calls (a chain
ends early when a step repeats an earlier one; a call after a retried step is left out):

| chain | call | prompt tokens | new since the previous call | evaluated | evaluated / new |
|---|---|---|---|---|---|
{rows}
"""
    write_section("embedded", "Embedded model: schema-enforced decoding and KV reuse", body)
    print(body)


if __name__ == "__main__":
    main()
