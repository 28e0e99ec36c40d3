"""First visible step text and whole answer of a fresh ``thinkchain ask``: the prompt prefix
loaded from the prefix store against evaluated, side by side in one run.

Every run is a new process on the embedded default model with default settings (the default
mode, code steps as ``auto`` chooses), ``--seed`` fixed so both variants write the same chain:

* **evaluated**: ``THINKCHAIN_PREFIX_CACHE=off``, the way every process worked before the store:
  the system prompt and layout (~400 tokens) are evaluated before the first token;
* **loaded**: the store holds the prefix (each configuration was seen once by a warm-up run),
  and the process loads its KV state instead.

Times are taken from outside the process, from the bytes it writes: process start; the model
loaded (a marker a two-line wrapper prints after ``LlamaCppBackend`` returns); the first
visible step text (the first character after the "Step 1: " heading on stderr); the answer
(the JSON document on stdout).  Raw decode speed is measured in the same run, in fresh
processes between the rounds, so that whole answer ÷ (generated tokens ÷ decode speed) says
how close a chain comes to pure decoding.  Then the proxy's first reasoning text over HTTP
(store off vs on), and model load with the weights read vs memory-mapped, page cache cold
(``/proc/sys/vm/drop_caches``, where permitted) and warm.

    python benchmarks/bench_first_step.py [--repeats 2] [--gsm8k 3] [--parts ask,proxy,page,load]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._report import gsm8k_items, stats, write_section
from thinkchain.models.embedded import DEFAULT_MODEL, path_of

STRAWBERRY_EN = "How many letters r are in the word strawberry?"
STRAWBERRY_ZH = "strawberry中有多少个字母r？"
SEED = "7"
LOADED = "@@thinkchain-bench-loaded@@"
# The first step's heading, in either language ("Step 1: ", "第 1 步："): text after it is
# the first thing a user sees move.
HEADING = re.compile(r"(?:Step 1|第 1 步)[:：]?[ \t]*\S")

# `thinkchain ask`, with a line on stderr once the model is loaded (nothing else changes).
ASK = textwrap.dedent(
    f"""
    import sys
    from thinkchain.models.backends import llamacpp
    _init = llamacpp.LlamaCppBackend.__init__
    def _marked(self, *args, **kwargs):
        _init(self, *args, **kwargs)
        sys.stderr.write("\\n{LOADED}\\n")
        sys.stderr.flush()
    llamacpp.LlamaCppBackend.__init__ = _marked
    from thinkchain.cli import main
    sys.argv = ["thinkchain", *sys.argv[1:]]
    main()
    """
)

# Raw decode speed of the backend: one short prompt, then unconstrained greedy tokens.
DECODE = textwrap.dedent(
    """
    import json, sys, time
    from thinkchain.chain.backend import GenerationRequest, TextChunk
    from thinkchain.models.backends.llamacpp import LlamaCppBackend
    backend = LlamaCppBackend(sys.argv[1], n_pinned=0)
    request = GenerationRequest(
        [{"role": "user", "content": "Write a long story about a lighthouse keeper."}],
        max_tokens=int(sys.argv[2]), temperature=0.0,
    )
    chunks = backend.generate_sync(request)
    stamps = [time.perf_counter() for c in chunks if isinstance(c, TextChunk)]
    print(json.dumps({"tokens": len(stamps), "tps": (len(stamps) - 1) / (stamps[-1] - stamps[0])}))
    """
)

# Model load with the weights read or mapped, then a first short generation (a mapped
# model's weights that are not repacked are only read from disk when first used).
LOAD = textwrap.dedent(
    """
    import json, sys, time
    started = time.perf_counter()
    from thinkchain.chain.backend import GenerationRequest, TextChunk
    from thinkchain.models.backends.llamacpp import LlamaCppBackend
    imported = time.perf_counter()
    backend = LlamaCppBackend(sys.argv[1], use_mmap=sys.argv[2] == "mmap", n_pinned=0)
    loaded = time.perf_counter()
    request = GenerationRequest([{"role": "user", "content": "Say hello."}], max_tokens=8,
                                temperature=0.0)
    list(backend.generate_sync(request))
    first = time.perf_counter()
    status = dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
    kib = lambda name: int(status.get(name, "0 kB").split()[0])
    print(json.dumps({"import": imported - started, "load": loaded - imported,
                      "first": first - loaded, "hwm": kib("VmHWM"), "anon": kib("RssAnon"),
                      "file": kib("RssFile")}))
    """
)


@dataclass
class AskRun:
    question: str
    variant: str
    loaded: float  # seconds from process start
    first_text: float | None
    answer: float | None
    generated: int
    evaluated_prompt: int
    code_seconds: float
    ok: bool
    decode_index: int = 0  # decode speed measured just before this run's pair ...
    tps: float = float("nan")  # ... and the mean of that and the one after it


@dataclass
class Stream:
    """A pipe read in a thread, each chunk with the time it arrived."""

    chunks: list[tuple[float, bytes]] = field(default_factory=list)

    def read(self, fd: int) -> None:
        while True:
            data = os.read(fd, 65536)
            if not data:
                return
            self.chunks.append((time.perf_counter(), data))

    def first_match(self, pattern: re.Pattern[str], after: float = 0.0) -> float | None:
        """When the text read so far first matched ``pattern`` (chunks after ``after``)."""
        text = b""
        for stamp, data in self.chunks:
            if stamp < after:
                continue
            text += data
            if pattern.search(text.decode("utf-8", "replace")):
                return stamp
        return None

    def text(self) -> str:
        return b"".join(d for _, d in self.chunks).decode("utf-8", "replace")


def run_ask(model: Path, question: str, variant: str, env: dict[str, str]) -> AskRun:
    args = [
        sys.executable, "-c", ASK, "ask", "--no-history", "--json", "--seed", SEED,
        "--model-path", str(model), question,
    ]  # fmt: skip
    started = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert proc.stdout is not None and proc.stderr is not None
    out, err = Stream(), Stream()
    readers = [
        threading.Thread(target=out.read, args=(proc.stdout.fileno(),)),
        threading.Thread(target=err.read, args=(proc.stderr.fileno(),)),
    ]
    for reader in readers:
        reader.start()
    proc.wait(timeout=1800)
    for reader in readers:
        reader.join()
    loaded = err.first_match(re.compile(re.escape(LOADED)))
    if loaded is None:
        raise SystemExit(f"the model did not load:\n{err.text()[-2000:]}")
    first = err.first_match(HEADING, after=loaded)
    answer = out.chunks[0][0] if out.chunks else None
    try:
        doc = json.loads(out.text())
    except ValueError:
        raise SystemExit(f"no JSON from thinkchain ask:\n{err.text()[-2000:]}") from None
    usage = doc["usage"]
    code = sum(r["seconds"] for s in doc["steps"] for r in s.get("runs", []))
    return AskRun(
        question=question,
        variant=variant,
        loaded=loaded - started,
        first_text=None if first is None else first - started,
        answer=None if answer is None else answer - started,
        generated=usage["completion_tokens"],
        evaluated_prompt=usage["prompt_tokens"] - usage["cached_tokens"],
        code_seconds=code,
        ok=doc["status"] == "completed",
    )


def decode_speed(model: Path, env: dict[str, str], tokens: int = 128) -> float:
    proc = subprocess.run(
        [sys.executable, "-c", DECODE, str(model), str(tokens)],
        capture_output=True,
        text=True,
        env=env,
        timeout=1800,
    )
    if proc.returncode != 0:
        raise SystemExit(f"decode speed failed:\n{proc.stderr[-2000:]}")
    return float(json.loads(proc.stdout.strip().splitlines()[-1])["tps"])


def warm_up(model: Path, env: dict[str, str]) -> None:
    """Each configuration seen once: the store saves its prefix (untimed)."""
    for tools in ("auto", "none"):
        for question in (STRAWBERRY_EN, STRAWBERRY_ZH):
            subprocess.run(
                [
                    sys.executable, "-m", "thinkchain", "ask", "--no-history", "-q",
                    "--tools", tools, "--max-steps", "1", "--min-steps", "0",
                    "--max-tokens", "16", "--model-path", str(model), question,
                ],
                env=env, capture_output=True, timeout=1800,
            )  # fmt: skip


# -- the proxy ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def proxy_runs(model: Path, env: dict[str, str], variant: str) -> list[dict[str, float | str]]:
    """Start ``thinkchain proxy`` on the model; the first two questions (English, Chinese)
    as soon as it answers, through HTTP: first reasoning text and end of stream."""
    port = free_port()
    started = time.perf_counter()
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "thinkchain", "proxy", "--model-path", str(model),
            "--port", str(port), "--log-level", "warning",
        ],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/v1"
    rows: list[dict[str, float | str]] = []
    try:
        deadline = time.monotonic() + 600
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the proxy did not start")
            try:
                models = httpx.get(f"{url}/models", timeout=2).json()["data"]
                break
            except (httpx.HTTPError, ValueError, KeyError):
                time.sleep(0.05)
        ready = time.perf_counter() - started
        variant_name = next(m["id"] for m in models if m["id"].endswith("-thinkchain"))
        for question in (STRAWBERRY_EN, STRAWBERRY_ZH):
            body = {
                "model": variant_name,
                "messages": [{"role": "user", "content": question}],
                "stream": True,
                "seed": int(SEED),
            }
            sent = time.perf_counter()
            first = None
            with httpx.stream("POST", f"{url}/chat/completions", json=body, timeout=1800) as r:
                r.raise_for_status()
                for line in r.iter_lines():
                    if first is None and line.startswith("data: ") and line != "data: [DONE]":
                        choices = json.loads(line[6:]).get("choices") or []
                        delta = choices[0].get("delta", {}) if choices else {}
                        if (delta.get("reasoning_content") or "").strip():
                            first = time.perf_counter() - sent
            total = time.perf_counter() - sent
            rows.append(
                {
                    "variant": variant,
                    "question": question,
                    "ready": ready,
                    "first": first if first is not None else float("nan"),
                    "total": total,
                }
            )
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    return rows


# -- the page -------------------------------------------------------------------------------

# `thinkchain ui`'s start (the model loaded, its prefixes prepared in the background: the same
# two calls as cli/ui_cmd.py), then the page itself in Streamlit's AppTest: two questions, each
# in a new session (a new conversation), sent at once; the first step's text read off the
# page's live run.
PAGE = textwrap.dedent(
    """
    import json, sys, time
    from streamlit.testing.v1 import AppTest
    from thinkchain.cli.options import backend_from_options
    from thinkchain.models.prefixes import prepare_in_background
    from thinkchain.ui import page as app
    from thinkchain.ui.backend_choice import PAGE_PARALLEL, page_tools
    started = time.perf_counter()
    backend = backend_from_options(None, None, None, None, parallel=PAGE_PARALLEL)
    prepare_in_background(backend, page_tools)
    loaded = time.perf_counter() - started
    for question in sys.argv[1:]:
        at = AppTest.from_file(app.__file__, default_timeout=1800)
        at.run()
        sent = time.perf_counter()
        at.chat_input(key="tc.question").set_value(question)
        at.run()
        run = at.session_state[app.CHAT_KEY].run
        first = None
        while not run.done:
            chain = run.snapshot().shown
            step = chain.current if chain else None
            shown = chain and (chain.steps or (step and (step.title + step.content).strip()))
            if first is None and shown:
                first = time.perf_counter() - sent
            time.sleep(0.01)
        total = time.perf_counter() - sent
        print(json.dumps({"question": question, "loaded": loaded, "first": first,
                          "total": total}), flush=True)
    """
)


def page_runs(model: Path, env: dict[str, str], variant: str) -> list[dict]:
    history = Path(env["THINKCHAIN_CACHE_DIR"]) / f"history-{variant}.sqlite3"
    proc = subprocess.run(
        [sys.executable, "-c", PAGE, STRAWBERRY_EN, STRAWBERRY_ZH],
        capture_output=True,
        text=True,
        timeout=3600,
        env={**env, "THINKCHAIN_MODEL_PATH": str(model), "THINKCHAIN_HISTORY": str(history)},
    )
    if proc.returncode != 0:
        raise SystemExit(f"the page failed:\n{proc.stderr[-2000:]}")
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    for row in rows:
        row.update(variant=variant, ready=row["loaded"])
        if row["first"] is None:
            row["first"] = float("nan")
    return rows


# -- model load -----------------------------------------------------------------------------


def drop_page_cache() -> bool:
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as fh:
            fh.write("3\n")
        return True
    except OSError:
        return False


def load_runs(model: Path, env: dict[str, str], repeats: int) -> tuple[list[dict], bool]:
    rows, cold_ok = [], True
    for _ in range(repeats):
        for how in ("read", "mmap"):
            for cache in ("cold", "warm"):
                if cache == "cold" and not (cold_ok := drop_page_cache()):
                    continue
                proc = subprocess.run(
                    [sys.executable, "-c", LOAD, str(model), how],
                    capture_output=True, text=True, env=env, timeout=1800,
                )  # fmt: skip
                if proc.returncode != 0:
                    raise SystemExit(f"model load failed:\n{proc.stderr[-2000:]}")
                row = json.loads(proc.stdout.strip().splitlines()[-1])
                rows.append({"how": how, "cache": cache, **row})
    return rows, cold_ok


# -- report ---------------------------------------------------------------------------------


def ask_table(runs: list[AskRun]) -> str:
    lines = [
        "| question | variant | model loaded s | first step text after load s | … in decode "
        "tokens | answer after load s | generated tokens | prompt tokens evaluated | code run "
        "s | answer ÷ decode-bound |",
        "|---|---|---|---|---|---|---:|---:|---:|---:|",
    ]
    questions = list(dict.fromkeys(r.question for r in runs))
    for question in questions:
        for variant in ("evaluated", "loaded"):
            rs = [r for r in runs if r.question == question and r.variant == variant]
            first = [r.first_text - r.loaded for r in rs if r.first_text is not None]
            # The same wait counted in decode-token times of that moment: steady however busy
            # the machine was (absolute seconds are not).
            first_tokens = [
                (r.first_text - r.loaded) * r.tps for r in rs if r.first_text is not None
            ]
            answer = [r.answer - r.loaded for r in rs if r.answer is not None]
            ratio = [
                (r.answer - r.loaded) / (r.generated / r.tps)
                for r in rs
                if r.answer is not None and r.generated
            ]
            short = question if len(question) < 48 else question[:45] + "…"
            lines.append(
                f"| {short} | {variant} | {stats([r.loaded for r in rs])} | {stats(first)} | "
                f"{stats(first_tokens, '{:.1f}')} | {stats(answer)} | "
                f"{stats([r.generated for r in rs], '{:.0f}')} | "
                f"{stats([r.evaluated_prompt for r in rs], '{:.0f}')} | "
                f"{stats([r.code_seconds for r in rs])} | {stats(ratio)} |"
            )
    return "\n".join(lines)


def summary(runs: list[AskRun]) -> str:
    out = []
    for variant in ("evaluated", "loaded"):
        rs = [r for r in runs if r.variant == variant]
        first = [r.first_text - r.loaded for r in rs if r.first_text is not None]
        tokens = [(r.first_text - r.loaded) * r.tps for r in rs if r.first_text is not None]
        ratio = [
            (r.answer - r.loaded) / (r.generated / r.tps) for r in rs if r.answer and r.generated
        ]
        within = sum(f <= 1.0 for f in first)
        out.append(
            f"- **{variant}**: first step text {stats(first)} s after load (≤ 1.0 s in "
            f"{within}/{len(first)} runs), the time of {stats(tokens, '{:.1f}')} decode tokens "
            f"then; whole answer {stats(ratio)} × decode-bound "
            f"(≤ 1.2 in {sum(x <= 1.2 for x in ratio)}/{len(ratio)})"
        )
    return "\n".join(out)


def proxy_table(
    rows: list[dict],
    ready: str = "proxy up (model loaded) s",
    first: str = "first reasoning text s",
    total: str = "end of stream s",
) -> str:
    lines = [f"| variant | question | {ready} | {first} | {total} |", "|---|---|---|---|---|"]
    for row in rows:
        lines.append(
            f"| {row['variant']} | {row['question']} | {row['ready']:.2f} | "
            f"{row['first']:.2f} | {row['total']:.2f} |"
        )
    return "\n".join(lines)


def load_table(rows: list[dict], cold_ok: bool) -> str:
    lines = [
        "| weights | page cache | load s | first 8 tokens s | peak RSS MiB | RSS anon MiB | "
        "RSS file MiB |",
        "|---|---|---|---|---|---|---|",
    ]
    for how in ("read", "mmap"):
        for cache in ("cold", "warm"):
            rs = [r for r in rows if r["how"] == how and r["cache"] == cache]
            if not rs:
                continue
            lines.append(
                f"| {how} | {cache} | {stats([r['load'] for r in rs])} | "
                f"{stats([r['first'] for r in rs])} | "
                f"{stats([r['hwm'] / 1024 for r in rs], '{:,.0f}')} | "
                f"{stats([r['anon'] / 1024 for r in rs], '{:,.0f}')} | "
                f"{stats([r['file'] / 1024 for r in rs], '{:,.0f}')} |"
            )
    if not cold_ok:
        lines.append("\nDropping the page cache was not permitted here: cold rows are missing.")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--gsm8k", type=int, default=3, help="GSM8K questions (file order)")
    parser.add_argument("--parts", default="ask,proxy,page,load", help="which parts to run")
    parser.add_argument("--load-repeats", type=int, default=2)
    args = parser.parse_args()
    parts = {p.strip() for p in args.parts.split(",")}
    model = path_of(DEFAULT_MODEL)
    questions = [STRAWBERRY_EN, STRAWBERRY_ZH]
    questions += [item["question"] for item in gsm8k_items()[: args.gsm8k]] if args.gsm8k else []
    runs: list[AskRun] = []
    tps: list[float] = []
    proxy: list[dict] = []
    page: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="thinkchain-bench-") as tmp:
        base = {**os.environ, "PYTHONUNBUFFERED": "1", "THINKCHAIN_CACHE_DIR": tmp}
        env = {"evaluated": {**base, "THINKCHAIN_PREFIX_CACHE": "off"}, "loaded": base}
        if parts & {"ask", "proxy", "page"}:
            print("warm-up: each configuration seen once", flush=True)
            warm_up(model, env["loaded"])
        sizes = [f.stat().st_size / 1024**2 for f in Path(tmp, "prefix-states").glob("*.ggsq")]
        if "ask" in parts:
            tps.append(decode_speed(model, base))
            print(f"decode {tps[-1]:.1f} tok/s", flush=True)
            for repeat in range(args.repeats):
                for question in questions:
                    order = ("evaluated", "loaded") if repeat % 2 == 0 else ("loaded", "evaluated")
                    for variant in order:  # alternating, so drift hits both alike
                        run = run_ask(model, question, variant, env[variant])
                        run.decode_index = len(tps) - 1
                        runs.append(run)
                        print(
                            f"{variant:9} load {run.loaded:.2f} first {run.first_text} answer "
                            f"{run.answer} tokens {run.generated} evaluated "
                            f"{run.evaluated_prompt}",
                            flush=True,
                        )
                    # Decode speed right after each pair: a run's decode-bound uses the two
                    # measurements around it (the load on the machine drifts).
                    tps.append(decode_speed(model, base))
                    print(f"decode {tps[-1]:.1f} tok/s", flush=True)
        if "proxy" in parts:
            for variant in ("evaluated", "loaded"):
                proxy += proxy_runs(model, env[variant], variant)
                print(proxy[-2:], flush=True)
        if "page" in parts:
            for variant in ("evaluated", "loaded"):
                page += page_runs(model, env[variant], variant)
                print(page[-2:], flush=True)
        loads, cold_ok = (
            load_runs(model, base, args.load_repeats) if "load" in parts else ([], True)
        )
    for run in runs:
        run.tps = statistics.mean(tps[run.decode_index : run.decode_index + 2])
    print(json.dumps({"ask": [vars(r) for r in runs], "tps": tps, "proxy": proxy,
                      "page": page, "load": loads}), flush=True)  # fmt: skip
    body = ""
    if runs:
        body += f"""
A fresh `thinkchain ask --no-history --json --seed {SEED} --model-path <default model>` per
run, default settings otherwise (the default mode; code steps on where the sandbox isolates
code); {args.repeats} runs of each question and variant, alternating. **evaluated**:
`THINKCHAIN_PREFIX_CACHE=off`, the prefix (system prompt and layout) evaluated as every
process did before; **loaded**: its KV state loaded from the prefix store, where an untimed
warm-up run per configuration (English and Chinese, code steps on and off) saved it
({len(sizes)} files, {stats(sizes, "{:.1f}")} MiB each). Times after "model loaded" are what
the goal counts: first visible step text ≤ 1.0 s after load, whole answer ≤ 1.2 ×
decode-bound. Decode-bound = generated tokens ÷ raw decode speed, measured in fresh processes
of the same run after every question's pair ({stats(tps, "{:.1f}")} tokens/s); each run uses
the mean of the measurements just before and after its pair. "Prompt tokens evaluated" is
over the whole chain (every request's prompt tokens not found in the KV cache). Two cores
make single runs noisy, so the variants ran alternately, question by question.

{ask_table(runs)}

{summary(runs)}
"""
    if proxy:
        body += f"""
### The proxy

`thinkchain proxy --model-path <default model>` started afresh per variant; the first two
questions sent (streaming, the reasoning variant) as soon as `/v1/models` answers: the model is
loaded by then and the prefixes are being prepared in the background (loaded from the store,
or with the store off evaluated).

{proxy_table(proxy)}
"""
    if page:
        body += f"""
### The page

`thinkchain ui`'s start run in one process (the model loaded with the page's two sequences,
its prefixes prepared in the background: English and Chinese, code steps as the sidebar
starts and the other way), then the page in Streamlit's AppTest: the two questions at once,
each in a new session; the first step text read off the page's live run.

{proxy_table(page, "model loaded s", "first step text s", "answer s")}
"""
    if loads:
        body += f"""
### Model load: weights read or memory-mapped

A fresh process builds the backend (`LlamaCppBackend(use_mmap=...)`), then generates 8 tokens;
page cache dropped before each cold run. Peak RSS from the kernel (VmHWM).

{load_table(loads, cold_ok)}
"""
    write_section(
        "first_step", "First step and whole answer: prompt prefix loaded or evaluated", body
    )
    print(body)


if __name__ == "__main__":
    main()
