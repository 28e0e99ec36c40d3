"""Proxy overhead: the same streaming requests through the proxy and straight to the upstream.

Three processes, so no two share an interpreter lock: the fake upstream (a FakeOpenAIServer
that streams one token every TOKEN_DELAY seconds), ``thinkchain proxy`` in front of it, and
this script as the client.  At 1, 10 and 50 concurrent streaming requests, side by side in one
run, over RUNS runs each:

* pass-through: ``fake-model`` via the proxy vs the upstream directly;
* reasoning: ``fake-model-thinkchain`` via the proxy, as a chat completion and through the
  Responses API (``POST /v1/responses``), vs the same chain run in-process (the library calling
  the upstream itself), so the difference is what HTTP + SSE around a chain costs in each API.

Time to first token is the first content (or reasoning) delta; total is the end of the stream.

    python benchmarks/bench_proxy.py [--runs 5] [--token-delay 0.01] [--tokens 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import textwrap
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from thinkchain import Chain, ChainSettings
from thinkchain.chain.events import ChainCompleted, ChainFailed, StepDelta
from thinkchain.models.backends.openai_compat import OpenAICompatBackend

# Run as a script (python benchmarks/bench_proxy.py): the helper sits next to it.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import stats, write_section

CONCURRENCY = (1, 10, 50)
STEPS = 3

UPSTREAM_SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    from thinkchain.testing.fake_openai import FakeOpenAIServer, FakeReply

    port, delay, tokens = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])

    def words(n):  # distinct words: the chain's guards cut repeated or looping text
        return " ".join(f"w{n}x{i}" for i in range(tokens))

    def responder(body):
        fmt = body.get("response_format") or {}
        done = sum(1 for m in body["messages"] if m["role"] == "assistant")
        if fmt.get("type") in ("json_schema", "json_object"):
            step = {"title": f"Step {done + 1}", "content": words(done), "next_action": "continue"}
            return FakeReply(json.dumps(step), delay=delay)
        return FakeReply(words(99), delay=delay)

    FakeOpenAIServer(responder=responder, port=port, backlog=512).start()
    print("ready", flush=True)
    time.sleep(24 * 3600)
    """
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"a server exited early (code {process.returncode})")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} did not come up")


@dataclass
class Sample:
    ttft: float
    total: float


@dataclass
class Series:
    """One path at one concurrency: per-run medians, and per-run throughput."""

    ttft: list[float] = field(default_factory=list)
    total: list[float] = field(default_factory=list)
    rps: list[float] = field(default_factory=list)


async def stream_chat(http: httpx.AsyncClient, url: str, model: str) -> Sample:
    body: dict[str, object] = {
        "model": model,
        "messages": [{"role": "user", "content": "Count."}],
        "stream": True,
    }
    if model.endswith("-thinkchain"):  # the fake upstream writes the seed's JSON steps
        body["thinkchain"] = {"mode": "iterative"}
    started = time.perf_counter()
    ttft = None
    async with http.stream("POST", f"{url}/chat/completions", json=body) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            if ttft is None:
                delta = json.loads(line[6:])["choices"]
                if delta and (
                    delta[0]["delta"].get("content") or delta[0]["delta"].get("reasoning_content")
                ):
                    ttft = time.perf_counter() - started
    total = time.perf_counter() - started
    return Sample(ttft if ttft is not None else total, total)


async def stream_response(http: httpx.AsyncClient, url: str, model: str) -> Sample:
    """A streamed ``POST /v1/responses``; the first token is the first summary or text delta."""
    body: dict[str, object] = {
        "model": model,
        "input": "Count.",
        "stream": True,
        "thinkchain": {"mode": "iterative"},
    }
    started = time.perf_counter()
    ttft = None
    async with http.stream("POST", f"{url}/responses", json=body) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if ttft is None and line.startswith("data: "):
                kind = json.loads(line[6:])["type"]
                if kind in ("response.reasoning_summary_text.delta", "response.output_text.delta"):
                    ttft = time.perf_counter() - started
    total = time.perf_counter() - started
    return Sample(ttft if ttft is not None else total, total)


async def chain_in_process(backend: OpenAICompatBackend) -> Sample:
    chain = Chain(backend, ChainSettings(mode="iterative", max_steps=STEPS, min_steps=STEPS))
    started = time.perf_counter()
    ttft = None
    async for event in chain.astream("Count."):
        if ttft is None and isinstance(event, StepDelta):
            ttft = time.perf_counter() - started
        if isinstance(event, ChainFailed):
            raise SystemExit(f"the in-process chain failed: {event.error}")
        if isinstance(event, ChainCompleted):
            break
    total = time.perf_counter() - started
    return Sample(ttft if ttft is not None else total, total)


async def measure(
    one: Callable[[], Awaitable[Sample]], concurrency: int, runs: int, series: Series
) -> None:
    for _ in range(runs):
        started = time.perf_counter()
        samples = await asyncio.gather(*(one() for _ in range(concurrency)))
        wall = time.perf_counter() - started
        series.ttft.append(statistics.median(s.ttft for s in samples))
        series.total.append(statistics.median(s.total for s in samples))
        series.rps.append(concurrency / wall)


def ms(values: list[float]) -> str:
    return stats([v * 1000 for v in values], "{:.0f}")


def added(proxy: list[float], direct: list[float]) -> str:
    return f"{(statistics.median(proxy) - statistics.median(direct)) * 1000:+.1f}"


def table(rows: list[tuple[int, str, Series, Series | None]]) -> str:
    out = [
        "| concurrent | path | TTFT ms | total ms | requests/s | added TTFT ms | added total ms |",
        "|---:|---|---|---|---|---:|---:|",
    ]
    for concurrency, name, series, baseline in rows:
        extra_ttft = added(series.ttft, baseline.ttft) if baseline else ""
        extra_total = added(series.total, baseline.total) if baseline else ""
        out.append(
            f"| {concurrency} | {name} | {ms(series.ttft)} | {ms(series.total)} | "
            f"{stats(series.rps, '{:.1f}')} | {extra_ttft} | {extra_total} |"
        )
    return "\n".join(out)


async def main_async(args: argparse.Namespace, upstream: str, proxy: str) -> str:
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    timeout = httpx.Timeout(120.0)
    backend = OpenAICompatBackend(upstream, "fake-model", read_timeout=120.0)
    passthrough: list[tuple[int, str, Series, Series | None]] = []
    reasoning: list[tuple[int, str, Series, Series | None]] = []
    async with httpx.AsyncClient(limits=limits, timeout=timeout) as http:
        # Warm both paths (connections, the upstream's JSON-schema dialect, imports).
        await stream_chat(http, upstream, "fake-model")
        await stream_chat(http, f"{proxy}/v1", "fake-model")
        await stream_chat(http, f"{proxy}/v1", "fake-model-thinkchain")
        await stream_response(http, f"{proxy}/v1", "fake-model-thinkchain")
        await chain_in_process(backend)
        for concurrency in CONCURRENCY:
            direct, via = Series(), Series()
            for _ in range(args.runs):  # interleaved run by run, so drift hits both alike
                await measure(
                    lambda: stream_chat(http, upstream, "fake-model"), concurrency, 1, direct
                )
                await measure(
                    lambda: stream_chat(http, f"{proxy}/v1", "fake-model"), concurrency, 1, via
                )
            passthrough += [
                (concurrency, "upstream directly", direct, None),
                (concurrency, "proxy, pass-through", via, direct),
            ]
            library, served, responses = Series(), Series(), Series()
            for _ in range(args.runs):
                await measure(lambda: chain_in_process(backend), concurrency, 1, library)
                await measure(
                    lambda: stream_chat(http, f"{proxy}/v1", "fake-model-thinkchain"),
                    concurrency,
                    1,
                    served,
                )
                await measure(
                    lambda: stream_response(http, f"{proxy}/v1", "fake-model-thinkchain"),
                    concurrency,
                    1,
                    responses,
                )
            reasoning += [
                (concurrency, "chain in-process (library)", library, None),
                (concurrency, "proxy, chat completions", served, library),
                (concurrency, "proxy, /v1/responses", responses, library),
            ]
            print(f"concurrency {concurrency} done", flush=True)
    reply_s = args.tokens * args.token_delay
    return (
        f"Fake upstream: {args.tokens} tokens per reply, one every {args.token_delay * 1000:g} ms "
        f"(about {reply_s:.2f} s a reply); a reasoning chain is {STEPS} steps and an answer "
        f"({STEPS + 1} upstream calls). Upstream, proxy (`thinkchain proxy`) and client run as "
        f"three processes on the same machine; each row is min / median / max over "
        f'{args.runs} runs of the per-run median request. "Added" compares medians with the '
        f"first row of its group (the upstream directly; the chain in-process), measured "
        f"interleaved in the same run.\n\n"
        f"### Pass-through (plain model)\n\n{table(passthrough)}\n\n"
        f"### Reasoning variant\n\n{table(reasoning)}\n\n"
        "TTFT for the reasoning rows is the first step text (reasoning_content in a chat "
        "completion, response.reasoning_summary_text.delta in a response); the library row is "
        "the first StepDelta event. The machine has 2 cores shared with other work, so the "
        "50-request rows include CPU contention between the three processes."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--token-delay", type=float, default=0.01)
    parser.add_argument("--tokens", type=int, default=50)
    args = parser.parse_args()
    upstream_port, proxy_port = free_port(), free_port()
    upstream_url = f"http://127.0.0.1:{upstream_port}/v1"
    proxy_url = f"http://127.0.0.1:{proxy_port}"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    upstream = subprocess.Popen(
        [
            sys.executable,
            "-c",
            UPSTREAM_SCRIPT,
            str(upstream_port),
            str(args.token_delay),
            str(args.tokens),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    proxy = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from thinkchain.cli import main; main()",
            "proxy",
            "--upstream",
            upstream_url,
            "--port",
            str(proxy_port),
            "--max-concurrent-chains",
            "100",
            "--default-steps",
            str(STEPS),
            "--min-steps",
            str(STEPS),
            "--log-level",
            "warning",
        ],
        env=env,
    )
    try:
        wait_for(f"{upstream_url}/models", upstream)
        wait_for(f"{proxy_url}/health", proxy)
        body = asyncio.run(main_async(args, upstream_url, proxy_url))
    finally:
        for process in (proxy, upstream):
            process.terminate()
            process.wait(timeout=20)
    path = write_section("proxy", "Proxy overhead", body)
    print(body)
    print(f"written to {path}")


if __name__ == "__main__":
    main()
