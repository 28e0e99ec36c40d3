"""Self-consistency (K = 5) against one chain: over HTTP, and on the in-process model.

HTTP: a fake OpenAI-compatible server on 127.0.0.1 streams every reply at a fixed delay per
token and serves concurrent requests side by side, as a batching server (vLLM) does; the K
chains of self-consistency run concurrently.  Goal: K = 5 finishes in under 2 × one chain.

In-process: the embedded default model decodes the K samples in one batch; the shared prefix
(system prompt and question) is evaluated once and shared with the other samples' sequences.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._report import stats, write_section
from thinkchain import Chain, ChainSettings
from thinkchain.chain.strategies import SelfConsistency
from thinkchain.models.backends.openai_compat import OpenAICompatBackend
from thinkchain.models.embedded import DEFAULT_MODEL, path_of
from thinkchain.testing.fake_openai import FakeOpenAIServer, FakeReply

QUESTION = "A farmer has 12 cows and buys 30 more. How many cows does he have now?"
TOKEN_DELAY = 0.02
WORDS = 40


def responder(body: dict) -> FakeReply:
    """Three JSON steps of about 40 tokens each, then a short answer."""
    done = sum(1 for m in body.get("messages", []) if m.get("role") == "assistant")
    if body.get("response_format") or "guided_json" in body:
        action = "final_answer" if done >= 2 else "continue"
        content = " ".join(f"reasoning{done}-{i}" for i in range(WORDS))
        text = json.dumps({"title": f"Step {done + 1}", "content": content, "next_action": action})
    else:
        text = "There are **42** cows."
    return FakeReply(text, delay=TOKEN_DELAY)


def http_times(runs: int, k: int) -> tuple[list[float], list[float]]:
    one, many = [], []
    with FakeOpenAIServer(responder=responder) as server:
        backend = OpenAICompatBackend(server.url, "fake-model")
        settings = ChainSettings(mode="iterative")
        Chain(backend, settings).run(QUESTION)  # warm up: dialect detection, connections
        for _ in range(runs):
            started = time.perf_counter()
            assert Chain(backend, settings).run(QUESTION).ok
            one.append(time.perf_counter() - started)
            sc = SelfConsistency(backend, settings, k=k, early_stop="off")
            started = time.perf_counter()
            assert sc.run(QUESTION).ok
            many.append(time.perf_counter() - started)
    return one, many


def embedded_times(runs: int, k: int) -> dict[str, list[float]]:
    from thinkchain.models.backends.llamacpp import LlamaCppBackend

    backend = LlamaCppBackend(path_of(DEFAULT_MODEL), n_parallel=k, n_ctx=4096)
    settings = ChainSettings(max_tokens_per_step=400)
    out: dict[str, list[float]] = {"one": [], "sc": [], "prefix_share": [], "samples": []}
    for run in range(runs):
        question = f"{QUESTION} (Run {run + 1}.)"
        backend.engine.clear_cache()  # start cold: nothing of the prompt is cached
        sc = SelfConsistency(backend, settings, k=k, early_stop="off")
        started = time.perf_counter()
        outcome = sc.run(question)
        out["sc"].append(time.perf_counter() - started)
        backend.engine.clear_cache()
        started = time.perf_counter()
        Chain(backend, settings.model_copy(update={"seed": 1000 + run})).run(question)
        out["one"].append(time.perf_counter() - started)
        first_calls = [
            s.steps[0].usage if s.steps else s.answer.usage
            for s in outcome.samples
            if s.steps or s.answer
        ]
        prompt_tokens = first_calls[0].prompt_tokens
        evaluated = sum(u.evaluated_prompt_tokens for u in first_calls)
        # 1.0: the shared prompt was evaluated once for all samples; k: once per sample.
        # (Each sample after the first still decodes the prompt's last token for its logits.)
        out["prefix_share"].append(evaluated / prompt_tokens)
        out["samples"].append(len(first_calls))
        print(
            f"run {run + 1}: one chain {out['one'][-1]:.1f} s, sc {out['sc'][-1]:.1f} s, "
            f"prompt evaluated {out['prefix_share'][-1]:.2f} × for {len(first_calls)} samples",
            flush=True,
        )
    backend.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--skip-embedded", action="store_true")
    args = parser.parse_args()
    one, many = http_times(args.runs, args.k)
    ratio = [m / o for m, o in zip(many, one, strict=True)]
    print(f"HTTP: one chain {stats(one)} s, sc k={args.k} {stats(many)} s, ratio {stats(ratio)}")
    body = f"""
**Over HTTP.** A fake OpenAI-compatible server on 127.0.0.1 streams each reply at
{TOKEN_DELAY * 1000:.0f} ms per token and serves concurrent requests side by side (as a batching
server does). One chain (three JSON steps of ~{WORDS} tokens and an answer) against
self-consistency with K = {args.k} chains run concurrently, early stopping off; {args.runs} runs,
min / median / max.

| | seconds |
|---|---|
| one chain | {stats(one)} |
| self-consistency, K = {args.k} | {stats(many)} |
| ratio | {stats(ratio)} (goal < 2) |
"""
    if not args.skip_embedded:
        emb = embedded_times(args.runs, args.k)
        emb_ratio = [s / o for s, o in zip(emb["sc"], emb["one"], strict=True)]
        share = f"{stats(emb['prefix_share'])} (1.0: once; {args.k}.0: once per sample)"
        body += f"""
**In-process.** The embedded default model ({DEFAULT_MODEL.name}), K = {args.k} samples of the
default chain mode decoded together in one batch (`n_parallel={args.k}`), the KV cache cleared
before each measurement. The shared prefix is the system prompt and the question: the first
sample evaluates it, the others share its KV cells (each decodes only the prompt's last token
again, for its own logits).

| | value |
|---|---|
| one chain, seconds | {stats(emb["one"], "{:.1f}")} |
| self-consistency K = {args.k}, seconds | {stats(emb["sc"], "{:.1f}")} |
| ratio | {stats(emb_ratio)} |
| prompt evaluated by the {args.k} samples' first calls, in prompt lengths | {share} |

Median: the K = {args.k} samples took {statistics.median(emb_ratio):.1f} × one chain's time.
"""
    write_section("sc", "Self-consistency against one chain", body)
    print(body)


if __name__ == "__main__":
    main()
