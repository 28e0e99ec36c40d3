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
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._report import ROOT, gsm8k_items, stats, write_section
from thinkchain import Chain, ChainSettings
from thinkchain.chain.answers import extract_answer, normalise_gold, same_answer
from thinkchain.chain.settings import DEFAULT_MODE
from thinkchain.models.backends.llamacpp import LlamaCppBackend
from thinkchain.models.embedded import DEFAULT_MODEL, path_of

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


RECORD = ROOT / "results" / "bench_naive" / "runs.jsonl"


def run_once(naive_llama, chain: Chain, items: list[dict], run_id: str, args) -> None:
    """One pass over the questions, naive loop then thinkchain for each, appended to the record."""
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
        row = {
            "run": run_id,
            "n": len(items),
            "question": i,
            "model": DEFAULT_MODEL.name,
            "mode": DEFAULT_MODE,
            "naive_seconds": naive_seconds,
            "naive_ok": naive_ok,
            "naive_steps": naive_steps,
            "ours_seconds": ours_seconds,
            "ours_ok": ours_ok,
            "ours_steps": len(result.steps),
        }
        with args.record.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(row) + "\n")
        print(
            f"run {run_id} {i}/{len(items)} naive {naive_seconds:.0f} s "
            f"{'✓' if naive_ok else '✗'} ({naive_steps} steps) · thinkchain "
            f"{ours_seconds:.0f} s {'✓' if ours_ok else '✗'}",
            flush=True,
        )


def complete_runs(record: Path, n: int) -> dict[str, list[dict]]:
    """Runs in the record that covered all n questions with this model and mode, in order."""
    runs: dict[str, list[dict]] = {}
    if record.exists():
        for line in record.read_text(encoding="utf-8").split("\n"):
            if line.strip():
                row = json.loads(line)
                if (row["n"], row["model"], row["mode"]) == (n, DEFAULT_MODEL.name, DEFAULT_MODE):
                    runs.setdefault(row["run"], []).append(row)
    return {
        run: rows
        for run, rows in runs.items()
        if len(rows) == n and len({r["question"] for r in rows}) == n
    }


def totals(rows: list[dict], side: str) -> tuple[int, float, float]:
    """(correct answers, wall seconds, wall seconds per correct answer) of one side of a run."""
    correct = sum(r[f"{side}_ok"] for r in rows)
    wall = sum(r[f"{side}_seconds"] for r in rows)
    return correct, wall, wall / correct if correct else float("inf")


def report(runs: dict[str, list[dict]], n: int, naive_cap: float, record: Path) -> str:
    per_run = {run: {s: totals(rows, s) for s in ("naive", "ours")} for run, rows in runs.items()}
    ratios = [t["ours"][2] / t["naive"][2] for t in per_run.values()]
    table = "\n".join(
        [
            "| run | naive: correct | naive: wall s | naive: s per correct "
            "| thinkchain: correct | thinkchain: wall s | thinkchain: s per correct | ratio |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        + [
            f"| {run} | {t['naive'][0]}/{n} | {t['naive'][1]:,.0f} | {t['naive'][2]:,.0f} "
            f"| {t['ours'][0]}/{n} | {t['ours'][1]:,.0f} | {t['ours'][2]:,.0f} | {ratio:.2f} |"
            for (run, t), ratio in zip(per_run.items(), ratios, strict=True)
        ]
    )
    every = [r for rows in runs.values() for r in rows]

    def over_runs(side: str, column: int, fmt: str) -> str:
        return stats([t[side][column] for t in per_run.values()], fmt)

    def per_question(key: str) -> str:
        return stats([r[key] for r in every if r.get(key) is not None], "{:.0f}")

    summary = "\n".join(
        f"| {label} | {naive} | {ours} |"
        for label, naive, ours in (
            (
                f"correct, of {n}",
                over_runs("naive", 0, "{:.0f}"),
                over_runs("ours", 0, "{:.0f}"),
            ),
            (
                "total wall time, s",
                over_runs("naive", 1, "{:,.0f}"),
                over_runs("ours", 1, "{:,.0f}"),
            ),
            (
                "**wall time per correct answer, s**",
                f"**{over_runs('naive', 2, '{:,.0f}')}**",
                f"**{over_runs('ours', 2, '{:,.0f}')}**",
            ),
            (
                "seconds per question (all runs)",
                per_question("naive_seconds"),
                per_question("ours_seconds"),
            ),
            (
                "steps per question (all runs)",
                per_question("naive_steps"),
                per_question("ours_steps"),
            ),
        )
    )
    shown = record.relative_to(ROOT) if record.is_relative_to(ROOT) else record
    return f"""
The first {n} questions of the shared GSM8K file, one after another, on the embedded
default model ({DEFAULT_MODEL.name}). Naive loop: written in `benchmarks/bench_naive.py` after
the seed's shape (JSON-object mode through llama-cpp-python's chat API, no streaming, the whole
history re-sent, up to 26 steps, the final answer forced into JSON; a question still looping
after {naive_cap:.0f} s is stopped at the end of its step and counted wrong, which only
shortens the baseline's time). thinkchain: its default mode (`{DEFAULT_MODE}`) with default
settings. For each question the naive loop runs, then thinkchain, so both see the same machine
state. The whole comparison ran {len(runs)} times (sampling at temperature 0.2, so answers
differ between runs); runs are appended to `{shown}` and this report is
built from every complete run there.

{table}

Over the {len(runs)} runs (min / median / max):

| | naive seed-style loop | thinkchain |
|---|---|---|
{summary}

thinkchain takes **{stats(ratios)} ×** (min / median / max over runs) the naive loop's wall
time per correct answer (goal ≤ 0.7 ×).
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--runs", type=int, default=5, help="whole comparisons to run now")
    parser.add_argument("--model-path", default=str(path_of(DEFAULT_MODEL)))
    parser.add_argument(
        "--naive-cap", type=float, default=300.0, help="stop a naive question after this long"
    )
    parser.add_argument(
        "--record", type=Path, default=RECORD, help="JSONL of every question of every run"
    )
    parser.add_argument(
        "--fresh", action="store_true", help="forget earlier runs in the record first"
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        help="sampling seed of both sides (default: from the clock, so repeated runs differ)",
    )
    args = parser.parse_args()
    items = gsm8k_items()[: args.n]
    args.record.parent.mkdir(parents=True, exist_ok=True)
    if args.fresh:
        args.record.unlink(missing_ok=True)

    import os

    from llama_cpp import Llama

    seed = args.seed if args.seed is not None else time.time_ns() % 2**31
    print(f"seed {seed}", flush=True)
    threads = os.cpu_count() or 1
    naive_llama = Llama(
        args.model_path,
        n_ctx=8192,
        n_threads=threads,
        n_threads_batch=threads,
        seed=seed,
        verbose=False,
    )
    chain = Chain(LlamaCppBackend(args.model_path, seed=seed), ChainSettings())
    for _ in range(args.runs):
        run_id = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        run_once(naive_llama, chain, items, run_id, args)
    runs = complete_runs(args.record, len(items))
    body = report(runs, len(items), args.naive_cap, args.record.resolve())
    write_section("naive", "thinkchain against a naive seed-style loop", body)
    print(body)


if __name__ == "__main__":
    main()
