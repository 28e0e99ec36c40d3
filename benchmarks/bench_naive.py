"""thinkchain against a naive reasoning loop in the seed's style, on the same model and questions.

The naive loop is what the seed (and g1) do, written here from their description: one JSON
step per call in JSON-object mode (llama-cpp-python's grammar), no streaming, the whole
history sent again as messages each call, up to 25 steps plus one by an off-by-one, and the
final answer forced into JSON too.  It runs on the same embedded model through
llama-cpp-python's own chat API.  thinkchain runs its default chain mode.

The figure of merit is wall time per correct answer over the same questions.
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
from thinkchain.answers import extract_answer, normalise_gold, same_answer
from thinkchain.backends.llamacpp import LlamaCppBackend
from thinkchain.models import DEFAULT_MODEL, path_of
from thinkchain.settings import DEFAULT_MODE

GSM8K = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "gsm8k_train_500.jsonl"

# Our own wording of the seed-style instructions (the seed's text is not copied).
NAIVE_SYSTEM = (
    "You are an expert who reasons carefully. Explain your thinking one step at a time. "
    "For every step, give a short title, then the reasoning, then decide whether to continue "
    "or to give the final answer. Use at least three steps and consider other approaches. "
    'Reply in JSON with the keys "title", "content" and "next_action" ("continue" or '
    '"final_answer").'
)
NAIVE_PREFILL = "I will think this through step by step, starting with the problem itself."
NAIVE_FINAL = "Now give the final answer based on the reasoning above."


def naive_chain(llama, question: str, max_seconds: float) -> tuple[str, int]:
    """(answer text, steps) of the naive loop; ("", steps) once it has run past max_seconds.

    The cap only ever shortens the naive loop's time (a capped question counts as wrong at the
    time it was stopped), so it can only flatter the baseline, never thinkchain.
    """
    started = time.perf_counter()
    messages = [
        {"role": "system", "content": NAIVE_SYSTEM},
        {"role": "user", "content": question},
        {"role": "assistant", "content": NAIVE_PREFILL},
    ]

    def call() -> dict:
        response = llama.create_chat_completion(
            messages=messages,
            max_tokens=1000,
            temperature=0.2,
            response_format={"type": "json_object"},
        )
        content = response["choices"][0]["message"]["content"] or ""
        try:
            data = json.loads(content)
            return data if isinstance(data, dict) else {"content": content}
        except ValueError:
            return {"title": "Reply", "content": content, "next_action": "continue"}

    steps = 0
    while True:
        data = call()
        steps += 1
        messages.append({"role": "assistant", "content": json.dumps(data)})
        if data.get("next_action") == "final_answer" or steps > 25:
            break
        if time.perf_counter() - started > max_seconds:
            return "", steps
    messages.append({"role": "user", "content": NAIVE_FINAL})
    final = call()
    return str(final.get("content", final)), steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--model-path", default=str(path_of(DEFAULT_MODEL)))
    parser.add_argument(
        "--naive-cap", type=float, default=300.0, help="stop a naive question after this long"
    )
    args = parser.parse_args()
    items = [
        json.loads(line) for line in GSM8K.read_text(encoding="utf-8").split("\n") if line.strip()
    ][: args.n]

    import os

    from llama_cpp import Llama

    threads = os.cpu_count() or 1
    naive_llama = Llama(
        args.model_path, n_ctx=8192, n_threads=threads, n_threads_batch=threads, verbose=False
    )
    ours = LlamaCppBackend(args.model_path)
    chain = Chain(ours, ChainSettings())
    rows = []
    for i, item in enumerate(items, start=1):
        gold = normalise_gold(item["answer"])
        started = time.perf_counter()
        text, naive_steps = naive_chain(naive_llama, item["question"], args.naive_cap)
        naive_seconds = time.perf_counter() - started
        naive_ok = same_answer(extract_answer(text), gold)
        started = time.perf_counter()
        result = chain.run(item["question"])
        ours_seconds = time.perf_counter() - started
        answer = result.answer.text if result.answer else ""
        ours_ok = result.ok and same_answer(extract_answer(answer), gold)
        rows.append(
            (naive_seconds, naive_ok, naive_steps, ours_seconds, ours_ok, len(result.steps))
        )
        print(
            f"{i}/{len(items)} naive {naive_seconds:.0f} s {'✓' if naive_ok else '✗'} "
            f"({naive_steps} steps) · thinkchain {ours_seconds:.0f} s {'✓' if ours_ok else '✗'}",
            flush=True,
        )
    naive_time = sum(r[0] for r in rows)
    ours_time = sum(r[3] for r in rows)
    naive_correct = sum(r[1] for r in rows)
    ours_correct = sum(r[4] for r in rows)
    naive_per = naive_time / naive_correct if naive_correct else float("inf")
    ours_per = ours_time / ours_correct if ours_correct else float("inf")

    def per_question(column: int) -> str:
        return stats([r[column] for r in rows], "{:.0f}")

    body = f"""
The first {len(items)} questions of the shared GSM8K file, one after another, on the embedded
default model ({DEFAULT_MODEL.name}). Naive loop: written in `benchmarks/bench_naive.py` after
the seed's shape (JSON-object mode through llama-cpp-python's chat API, no streaming, the whole
history re-sent, up to 26 steps, the final answer forced into JSON; a question still looping
after {args.naive_cap:.0f} s is stopped at the end of its step and counted wrong, which only
shortens the baseline's time). thinkchain: its default
mode (`{DEFAULT_MODE}`) with default settings. Each question ran once in each; per-question
times are min / median / max over the {len(items)} questions.

| | naive seed-style loop | thinkchain |
|---|---|---|
| correct | {naive_correct}/{len(items)} | {ours_correct}/{len(items)} |
| seconds per question | {per_question(0)} | {per_question(3)} |
| steps per question | {per_question(2)} | {per_question(5)} |
| total wall time, s | {naive_time:,.0f} | {ours_time:,.0f} |
| **wall time per correct answer, s** | **{naive_per:,.0f}** | **{ours_per:,.0f}** |

thinkchain takes **{ours_per / naive_per:.2f} ×** the naive loop's wall time per correct answer
(goal ≤ 0.7 ×). Median time per question: {statistics.median([r[3] for r in rows]):.0f} s
against {statistics.median([r[0] for r in rows]):.0f} s.
"""
    write_section("naive", "thinkchain against a naive seed-style loop", body)
    print(body)


if __name__ == "__main__":
    main()
