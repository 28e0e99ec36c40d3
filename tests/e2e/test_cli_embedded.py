"""The real embedded model, end to end: structure, streams, KV reuse; never correctness."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from thinkchain import Chain, ChainSettings, StepDelta, StepDone
from thinkchain.chain.backend import Completion, GenerationRequest, TextChunk
from thinkchain.chain.steps import STEP_SCHEMA, parse_step
from thinkchain.models.backends.factory import embedded_backend

QUESTION = "How many letters r are in the word strawberry?"
# The first step's heading on a line of its own: "Step 1: its title", or "Step 1" alone for
# a step the model left untitled.
FIRST_STEP = re.compile(r"^Step 1(:|$)", re.MULTILINE)
SHORT = ["--max-steps", "3", "--min-steps", "2", "--max-tokens", "160"]


def thinkchain(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "thinkchain", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **(env or {})},
    )


def test_ask_json_document_has_every_step_answer_time_and_usage(small_model_path):
    proc = thinkchain("ask", "--model-path", str(small_model_path), *SHORT, "--json", QUESTION)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["status"] == "completed" and doc["question"] == QUESTION
    assert 1 <= len(doc["steps"]) <= 3
    for i, step in enumerate(doc["steps"], start=1):
        assert step["index"] == i
        assert step["title"].strip() and step["content"].strip()
        assert step["next_action"] in ("continue", "final_answer")
        assert step["seconds"] > 0 and step["usage"]["completion_tokens"] > 0
    assert doc["answer"].strip()
    assert (
        doc["usage"]["completion_tokens"]
        == sum(s["usage"]["completion_tokens"] for s in doc["steps"])
        + doc["final"]["usage"]["completion_tokens"]
        + doc["wasted_usage"]["completion_tokens"]  # discarded attempts cost tokens too
    )
    assert doc["seconds"] >= sum(s["seconds"] for s in doc["steps"])
    # The steps were shown live on stderr even in --json mode.
    assert FIRST_STEP.search(proc.stderr)


def test_answer_goes_to_stdout_steps_to_stderr(small_model_path):
    proc = thinkchain("ask", "--model-path", str(small_model_path), *SHORT, QUESTION)
    assert proc.returncode == 0, proc.stderr
    assert FIRST_STEP.search(proc.stderr) and "Total time" in proc.stderr
    assert not FIRST_STEP.search(proc.stdout) and proc.stdout.strip()
    # stdout holds the final answer only, exactly as the stderr view printed nothing of it.
    assert "⏱" not in proc.stdout


def test_model_path_from_the_environment(small_model_path):
    proc = thinkchain(
        "ask", *SHORT, "-q", QUESTION, env={"THINKCHAIN_MODEL_PATH": str(small_model_path)}
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip()


@pytest.mark.parametrize(
    ("path_text", "message"),
    [("/nonexistent/model.gguf", "model file not found"), ("CORRUPT", "not a GGUF model file")],
)
def test_bad_model_path_gives_one_clear_line(tmp_path, path_text, message):
    if path_text == "CORRUPT":
        bad = tmp_path / "broken.gguf"
        bad.write_bytes(b"this is not a model" * 100)
        path_text = str(bad)
    proc = thinkchain("ask", "--model-path", path_text, QUESTION)
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_truncated_gguf_is_refused_cleanly(tmp_path, small_model_path):
    # A real GGUF header followed by nothing: llama.cpp itself must refuse it.
    cut = tmp_path / "cut.gguf"
    with open(small_model_path, "rb") as src:
        cut.write_bytes(src.read(1_000_000))
    proc = thinkchain("ask", "--model-path", str(cut), QUESTION)
    assert proc.returncode == 2 and "could not load" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_python_api_streams_steps_and_reuses_the_kv_cache(small_model_path):
    backend = embedded_backend(small_model_path)
    # One call per step (iterative), so every step after the first has a prompt of its own.
    settings = ChainSettings(mode="iterative", max_steps=3, min_steps=3, max_tokens_per_step=160)
    chain = Chain(backend, settings)
    events = list(chain.stream(QUESTION))
    result = events[-1].result
    assert result.ok, result.error
    deltas = [e for e in events if isinstance(e, StepDelta)]
    assert len(deltas) > len(result.steps) * 3  # streamed in pieces, not in one block
    assert len([e for e in events if isinstance(e, StepDone)]) == len(result.steps)
    # Every step after the first finds the conversation so far in the KV cache: it evaluates
    # only the new tokens (the previous step and the chat markup), never the whole prompt.
    for step in result.steps[1:]:
        usage = step.usage
        assert usage.cached_tokens > 0
        assert usage.evaluated_prompt_tokens < usage.prompt_tokens / 2
    answer_usage = result.answer.usage
    assert answer_usage.cached_tokens > answer_usage.prompt_tokens / 2


def test_schema_mask_makes_every_step_valid_json(small_model_path):
    backend = embedded_backend(small_model_path)
    messages = [
        {"role": "system", "content": "Reply with a JSON step."},
        {"role": "user", "content": "Count the letters in 'banana'."},
    ]
    finished = 0
    for seed in range(3):
        request = GenerationRequest(
            messages, max_tokens=400, temperature=0.7, schema=STEP_SCHEMA, seed=seed
        )
        chunks = list(backend.generate_sync(request))
        text = "".join(c.text for c in chunks if isinstance(c, TextChunk))
        [completion] = [c for c in chunks if isinstance(c, Completion)]
        if completion.finish_reason == "length":
            # Sampling at 0.7 can run a string on until max_tokens (the chain retries a cut
            # step); what was written is still the start of a step, never anything else.
            assert text.lstrip().startswith('{"'), text[:200]
            continue
        finished += 1
        step = parse_step(text)  # raises if the output were not a valid step
        assert json.loads(text.strip())["next_action"] in ("continue", "final_answer")
        assert step.title and step.content
    assert finished >= 1, "every sample ran to max_tokens"


def test_a_question_larger_than_the_context_fails_before_any_generation(small_model_path):
    question = "9 " * 15_000  # under the 32,000-character limit, over 8,192 tokens
    proc = thinkchain(
        "ask", "--no-history", "--model-path", str(small_model_path), "--json", question
    )
    assert proc.returncode == 1
    doc = json.loads(proc.stdout)
    assert doc["error"]["kind"] == "context_overflow"
    assert "exceeds the model's context of 8,192 tokens" in doc["error"]["message"]
    assert doc["steps"] == [] and doc["usage"]["completion_tokens"] == 0
