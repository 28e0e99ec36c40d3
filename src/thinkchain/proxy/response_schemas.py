"""Request and response models of the Responses API (``POST /v1/responses``).

The request allows unknown fields, as OpenAI's clients send many (``include``, ``reasoning``,
``text``, ``truncation``...); pass-through forwards the body untouched.  ``input`` items are
read by response_input.py, which names the item a mistake is in; here they are only objects.
The response models document the shape in the OpenAPI document; the writer builds the JSON.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from thinkchain.proxy.schemas import ThinkchainOptions


class ResponsesRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str = Field(..., min_length=1)
    input: str | list[dict[str, Any]] = Field(
        ..., description="The question as text, or message items (the last one the user's)."
    )
    instructions: str | None = Field(None, description="A system message before the input.")
    stream: bool = False
    previous_response_id: str | None = Field(
        None, description="Go on from a response this server kept (store was not false)."
    )
    store: bool = Field(True, description="Keep the response for previous_response_id.")
    max_output_tokens: int | None = Field(
        None, ge=1, description="Reasoning variants: a budget for every token generated."
    )
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    metadata: dict[str, str] | None = None
    background: bool | None = None
    conversation: Any = None
    thinkchain: ThinkchainOptions | None = None


# -- responses --------------------------------------------------------------------------------


class SummaryText(BaseModel):
    type: Literal["summary_text"] = "summary_text"
    text: str


class ReasoningItem(BaseModel):
    """The steps: one summary part holding them as readable text."""

    model_config = ConfigDict(extra="allow")

    id: str
    type: Literal["reasoning"] = "reasoning"
    summary: list[SummaryText]
    status: Literal["in_progress", "completed", "incomplete"] | None = None


class OutputText(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: Literal["output_text"] = "output_text"
    text: str
    annotations: list[Any] = Field(default_factory=list)


class MessageItem(BaseModel):
    """The answer."""

    model_config = ConfigDict(extra="allow")

    id: str
    type: Literal["message"] = "message"
    role: Literal["assistant"] = "assistant"
    status: Literal["in_progress", "completed", "incomplete"]
    content: list[OutputText]


class InputTokensDetails(BaseModel):
    cached_tokens: int = 0


class OutputTokensDetails(BaseModel):
    reasoning_tokens: int = 0


class ResponseUsage(BaseModel):
    input_tokens: int
    input_tokens_details: InputTokensDetails
    output_tokens: int
    output_tokens_details: OutputTokensDetails
    total_tokens: int


class ResponseError(BaseModel):
    code: str
    message: str


class IncompleteDetails(BaseModel):
    reason: str


class ResponseObject(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    object: Literal["response"] = "response"
    created_at: int
    status: Literal["completed", "failed", "in_progress", "incomplete"]
    model: str
    output: list[ReasoningItem | MessageItem | dict[str, Any]]
    usage: ResponseUsage | None = None
    error: ResponseError | None = None
    incomplete_details: IncompleteDetails | None = None
    instructions: str | None = None
    previous_response_id: str | None = None
    thinkchain: dict[str, Any] | None = Field(
        None, description="Reasoning variants: the steps and the run as structured data."
    )
