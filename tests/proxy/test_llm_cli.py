"""Simon Willison's ``llm`` command, as installed from PyPI, with the proxy as an OpenAI model.

``llm`` is set up the way its documentation says for OpenAI-compatible servers: an
``extra-openai-models.yaml`` in its user directory.  Its chat models print the answer on
stdout and do not print chat-completion reasoning; a reply that was not streamed is logged
whole, reasoning included, in its ``logs.db``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import SecretStr

from thinkchain.models.backends.scripted import demo_backend

from .conftest import ServerThread
from .helpers import DEMO_ANSWER, DEMO_QUESTION, demo_reasoning

KEY = "sk-llm-cli-test-7"


@dataclass
class LLM:
    """The ``llm`` command with its own user directory, pointed at one proxy."""

    url: str
    env: dict[str, str]

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "llm", *args],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=120,
        )

    def ask(self, *options: str, key: str = KEY) -> subprocess.CompletedProcess[str]:
        question = DEMO_QUESTION[0]["content"]
        return self("prompt", "-m", "thinkchain-demo", "--key", key, *options, question)


@pytest.fixture
def llm(tmp_path: Path, start_proxy: Callable[..., ServerThread]) -> LLM:
    """``llm`` against a proxy of the demo model that wants a key."""
    proxy = start_proxy(local_backend=demo_backend(), api_keys=(SecretStr(KEY),))
    (tmp_path / "extra-openai-models.yaml").write_text(
        "- model_id: thinkchain-demo\n"
        "  model_name: demo-thinkchain\n"
        f"  api_base: {proxy.url}/v1\n"
        "  api_key_name: thinkchain\n",
        encoding="utf-8",
    )
    env = {**os.environ, "LLM_USER_PATH": str(tmp_path), "NO_COLOR": "1"}
    env.pop("OPENAI_API_KEY", None)
    return LLM(proxy.url, env)


def test_llm_prints_the_answer_on_stdout(llm: LLM) -> None:
    done = llm.ask()
    assert done.returncode == 0, done.stderr
    assert done.stdout == DEMO_ANSWER + "\n"  # the steps stay out of the answer


def test_llm_logs_the_reasoning_of_a_reply_it_did_not_stream(llm: LLM) -> None:
    done = llm.ask("--no-stream")
    assert done.returncode == 0, done.stderr
    assert done.stdout == DEMO_ANSWER + "\n"
    logged = llm("logs", "--json", "-n", "1")
    assert logged.returncode == 0, logged.stderr
    record = json.loads(logged.stdout)[0]
    assert record["response"] == DEMO_ANSWER
    message = record["response_json"]["choices"][0]["message"]
    expected = demo_reasoning(llm.url, KEY)
    assert message["reasoning_content"] == expected
    assert "reasoning" not in message  # one name only (the default reasoning format)


def test_llm_reports_a_wrong_key(llm: LLM) -> None:
    done = llm.ask(key="sk-not-the-key")
    assert done.returncode != 0
    assert done.stdout == ""
    assert "401" in done.stderr and "invalid API key" in done.stderr  # the proxy's own words
    assert "sk-not-the-key" not in done.stderr
