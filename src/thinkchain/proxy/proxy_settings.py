"""Settings of one proxy server, validated once when it starts."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from thinkchain.chain.settings import HARD_MAX_STEPS, ChainSettings, Tool

DEFAULT_VARIANT_PATTERN = "{model}-thinkchain"

# Where a chat completion carries the steps (reasoning_format.py says who reads which):
# DeepSeek's field, vLLM's newer name for it, <think> tags in the content, or nowhere.
ReasoningFormat = Literal["reasoning_content", "reasoning", "think", "none"]
REASONING_FORMATS: tuple[ReasoningFormat, ...] = ("reasoning_content", "reasoning", "think", "none")


class ProxySettings(BaseModel):
    """Everything ``create_app`` needs.  Keys are SecretStr so no repr or log ever shows them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # OpenAI-compatible servers (".../v1"); empty means the in-process model given to create_app.
    upstreams: tuple[str, ...] = ()
    upstream_api_key: SecretStr | None = None
    # Bearer keys clients must present; empty means no authentication.
    api_keys: tuple[SecretStr, ...] = ()
    # How the reasoning variant of a model is named; "{model}" stands for the upstream name.
    variant_pattern: str = DEFAULT_VARIANT_PATTERN
    # Chains running at once; one more is answered 429 with Retry-After rather than queued.
    max_concurrent_chains: int = Field(8, ge=1, le=10_000)
    retry_after_seconds: int = Field(2, ge=0, le=3600)
    max_body_bytes: int = Field(4 * 1024 * 1024, ge=1024)
    # Caps on what a request may ask for in its "thinkchain" options.
    max_steps_cap: int = Field(50, ge=1, le=HARD_MAX_STEPS)
    max_k: int = Field(8, ge=1, le=64)
    default_k: int = Field(5, ge=1, le=64)
    # Budgets every chain gets at most, whatever the request says.
    max_total_tokens: int | None = Field(None, ge=1)
    max_seconds: float | None = Field(600.0, gt=0)
    # Upstream timeouts (seconds) and how long the upstream model list is trusted.
    connect_timeout: float = Field(10.0, gt=0)
    read_timeout: float = Field(120.0, gt=0)
    models_ttl: float = Field(60.0, ge=0)
    # Code steps requests may ask for; off unless the operator allows them, since the code
    # the model writes then runs on this machine (in the sandbox).
    tools: tuple[Tool, ...] = ()
    # Where chat completions put the steps unless a request says otherwise. One field only:
    # clients that read both names (openai-agents) would otherwise show every step twice.
    reasoning_format: ReasoningFormat = "reasoning_content"
    # Responses kept in memory for previous_response_id (least recently used go first).
    max_stored_responses: int = Field(1000, ge=0, le=100_000)
    # Defaults of every chain; a request's options override some of them.
    chain: ChainSettings = ChainSettings()

    @field_validator("variant_pattern")
    @classmethod
    def _one_placeholder(cls, value: str) -> str:
        if value.count("{model}") != 1 or value == "{model}":
            raise ValueError(
                "the variant pattern needs '{model}' exactly once and some text around it, "
                "e.g. '{model}-thinkchain'"
            )
        if re.search(r"[{}]", value.replace("{model}", "")):
            raise ValueError("the variant pattern may contain no braces besides '{model}'")
        return value

    @field_validator("upstreams")
    @classmethod
    def _http_urls(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        out: list[str] = []
        for url in value:
            url = url.strip().rstrip("/")
            if not re.match(r"^https?://[^/\s]+", url):
                raise ValueError(f"not an http(s) URL: {url!r}")
            if url not in out:
                out.append(url)
        return tuple(out)

    def key_values(self) -> list[str]:
        return [key.get_secret_value() for key in self.api_keys]


def read_keys_file(path: str | Path) -> tuple[SecretStr, ...]:
    """Keys from a file, one a line; blank lines and lines starting with '#' are skipped."""
    text = Path(path).read_text(encoding="utf-8")
    keys = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keys.append(SecretStr(line))
    if not keys:
        raise ValueError(f"the keys file {path} holds no key")
    return tuple(keys)
