"""Request and response models of the OpenAI-compatible API; they also feed the OpenAPI document.

Requests allow unknown fields (clients send many OpenAI parameters; pass-through forwards them
untouched), except the ``thinkchain`` options, which are ours and strict.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from thinkchain.chain.settings import HARD_MAX_STEPS, MODES, Strategy, Tool
from thinkchain.proxy.proxy_settings import ReasoningFormat

Role = Literal["system", "developer", "user", "assistant", "tool", "function"]


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Role
    content: str | list[ContentPart] | None = None
    name: str | None = None


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")

    include_usage: bool = False


class ThinkchainOptions(BaseModel):
    """Per-request reasoning options (the body's ``thinkchain`` object)."""

    model_config = ConfigDict(extra="forbid")

    max_steps: int | None = Field(
        None, ge=1, le=HARD_MAX_STEPS, description="At most this many steps (server caps apply)."
    )
    min_steps: int | None = Field(None, ge=0, le=HARD_MAX_STEPS, description="At least this many.")
    strategy: Strategy = Field(
        "chain",
        description="'chain': one chain; 'sc': self-consistency, k chains and a vote; 'both': "
        "a program and prose side by side, more of both only while they disagree (at most k).",
    )
    k: int | None = Field(
        None, ge=1, le=64, description="'sc': the chains sampled; 'both': the most chains."
    )
    lang: Literal["auto", "zh", "en"] | None = Field(None, description="Prompt language.")
    # Any mode the core knows; read from settings.MODES so new modes need no change here.
    mode: str | None = Field(
        None, description="How the model thinks.", json_schema_extra={"enum": list(MODES)}
    )

    verify: bool | None = Field(
        None, description="Check the answer by solving again another way (one more step)."
    )
    tools: list[Tool] | None = Field(
        None,
        description="Code steps: ['python'] lets the model run Python in a step. The server "
        "must allow it (thinkchain proxy --tools python); otherwise the request is a 400.",
    )
    reasoning_format: ReasoningFormat | None = Field(
        None,
        description="Where a chat completion puts the steps: 'reasoning_content', 'reasoning', "
        "'think' (<think>...</think> before the answer in content) or 'none'. Default: the "
        "server's --reasoning-format. The Responses API always uses its reasoning item "
        "unless this is 'none' (no steps) or 'think' (tags in the message text).",
    )

    @field_validator("mode")
    @classmethod
    def _known_mode(cls, value: str | None) -> str | None:
        if value is not None and value not in MODES:
            raise ValueError(f"unknown mode {value!r}; one of {', '.join(MODES)}")
        return value


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str = Field(..., min_length=1)
    messages: list[ChatMessage] = Field(..., min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    max_tokens: int | None = Field(
        None, ge=1, description="Reasoning variants: the length of the final answer."
    )
    max_completion_tokens: int | None = Field(
        None, ge=1, description="Reasoning variants: a budget for every token generated."
    )
    seed: int | None = None
    n: int | None = Field(None, ge=1, le=1, description="Only one choice is produced.")
    # Where the steps go, as llama.cpp's server (reasoning_format) and vLLM (include_reasoning)
    # let a request say it; thinkchain.reasoning_format wins over both.
    reasoning_format: str | None = Field(
        None,
        description="llama.cpp's field: 'deepseek' (reasoning_content), 'none' (<think> tags "
        "in content), 'auto' (the server's default).",
    )
    include_reasoning: bool | None = Field(
        None, description="vLLM's field: false leaves the steps out."
    )
    thinkchain: ThinkchainOptions | None = None


# -- responses --------------------------------------------------------------------------------


class ErrorBody(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody


class PromptTokensDetails(BaseModel):
    cached_tokens: int = 0


class CompletionTokensDetails(BaseModel):
    reasoning_tokens: int = 0


class CompletionUsage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: PromptTokensDetails | None = None
    completion_tokens_details: CompletionTokensDetails | None = None


class AssistantMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["assistant"] = "assistant"
    content: str | None = None
    reasoning_content: str | None = Field(
        None,
        description="The reasoning steps as readable text (reasoning variants, by default).",
    )
    reasoning: str | None = Field(
        None,
        description="The steps under vLLM's newer name instead, with reasoning_format "
        "'reasoning'. With 'think' they open content in <think> tags; 'none' leaves them out.",
    )


class Choice(BaseModel):
    model_config = ConfigDict(extra="allow")

    index: int
    message: AssistantMessage
    finish_reason: str | None = None


class ChatCompletion(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: CompletionUsage | None = None
    thinkchain: dict[str, Any] | None = Field(
        None, description="Reasoning variants: the steps and the run as structured data."
    )


class ModelCard(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "thinkchain"
    thinkchain: dict[str, Any] | None = Field(
        None, description="Reasoning variants: what they offer, e.g. the code-step tools."
    )


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    chains_running: int
    max_concurrent_chains: int
    tools: list[Tool] = Field(
        default_factory=list, description="Code steps requests may ask for; empty: none."
    )
