"""Where a chat completion carries the steps: the format, and the deltas and message it makes.

Clients look for a model's thinking in different places, and several look in more than one:

* ``reasoning_content`` (DeepSeek's name): LiteLLM (first), the Vercel AI SDK's
  openai-compatible provider (first), openai-agents (as a reasoning summary), pydantic-ai,
  Open WebUI, openai-node's chunks.
* ``reasoning`` (vLLM's newer name, Ollama's, OpenRouter's): pydantic-ai (first), the AI SDK,
  openai-agents (as reasoning text, beside the summary), LiteLLM when the other is absent.
* ``<think>…</think>`` before the answer in ``content``: Open WebUI, LibreChat, Jan and most
  local chat apps show it as a collapsible thought; pydantic-ai reads it as thinking.

So the steps go in exactly one place: with both names, openai-agents streamed every step
twice.  The default, ``reasoning_content``, is read by every client tested (docs/proxy.md).
A request may choose with ``thinkchain.reasoning_format``, with llama.cpp's
``reasoning_format`` (``deepseek``, ``none``, ``auto``) or with vLLM's ``include_reasoning``.
"""

from __future__ import annotations

from typing import Any

from thinkchain.proxy.errors import bad_request
from thinkchain.proxy.proxy_settings import ProxySettings, ReasoningFormat
from thinkchain.proxy.schemas import ChatCompletionRequest

OPEN_TAG = "<think>"
CLOSE_TAG = "</think>"

# llama.cpp's server values and what they mean here.  "none" there means "leave the thinking
# in the text, tags and all", which is this proxy's "think".
_LLAMA_CPP: dict[str, ReasoningFormat | None] = {
    "deepseek": "reasoning_content",
    "none": "think",
    "auto": None,  # the server's own default
}


def choose(body: ChatCompletionRequest, proxy: ProxySettings) -> ReasoningFormat:
    """The request's format: its thinkchain option, else llama.cpp's or vLLM's field, else the
    server's; a value that means nothing here is a 400, not silently the default."""
    if body.thinkchain is not None and body.thinkchain.reasoning_format is not None:
        return body.thinkchain.reasoning_format
    if body.reasoning_format is not None:
        if body.reasoning_format not in _LLAMA_CPP:
            raise bad_request(
                f"reasoning_format {body.reasoning_format!r} is not served here; llama.cpp's "
                "'deepseek' (steps in reasoning_content), 'none' (<think> tags in content) or "
                "'auto', or thinkchain.reasoning_format",
                param="reasoning_format",
            )
        return _LLAMA_CPP[body.reasoning_format] or proxy.reasoning_format
    if body.include_reasoning is False:
        return "none"
    return proxy.reasoning_format


def _defuse(text: str) -> str:
    """Step text that cannot close (or open) the think block it sits in.

    A zero-width space after '<' keeps the tag readable and stops every tag parser matching it.
    """
    return text.replace(CLOSE_TAG, "<\u200b/think>").replace(OPEN_TAG, "<\u200bthink>")


class ChatReasoning:
    """The steps of one completion in one format: the deltas of a stream, or a whole message.

    For ``think``, a tag split across two deltas must still be defused, so the end of each
    reasoning delta that could begin a tag waits for the next one (or for the block's close).
    """

    def __init__(self, fmt: ReasoningFormat) -> None:
        self.format = fmt
        self._open = False  # a <think> block has been opened and not yet closed
        self._answered = False  # answer text has been sent (a later block starts apart from it)
        self._held = ""  # the end of the last reasoning delta that may be the start of a tag

    # -- streamed -----------------------------------------------------------------------------

    def reasoning(self, text: str) -> dict[str, Any] | None:
        """The delta for a piece of reasoning, or None when it is not sent."""
        if not text or self.format == "none":
            return None
        if self.format != "think":
            return {self.format: text}
        out = ""
        if not self._open:
            self._open = True
            out = ("\n\n" if self._answered else "") + OPEN_TAG + "\n"
        text = self._held + text
        keep = _tag_prefix_len(text)
        self._held = text[len(text) - keep :] if keep else ""
        out += _defuse(text[: len(text) - keep])
        return {"content": out} if out else None

    def content(self, text: str) -> dict[str, Any]:
        """The delta for a piece of the answer (closing an open think block first)."""
        self._answered = True
        return {"content": self._close() + text}

    def close(self) -> dict[str, Any] | None:
        """The delta that closes a think block still open when the run ends, or None."""
        closing = self._close()
        return {"content": closing} if closing else None

    def _close(self) -> str:
        if not self._open:
            return ""
        self._open = False
        held, self._held = self._held, ""
        return _defuse(held) + "\n" + CLOSE_TAG + "\n\n"

    # -- whole --------------------------------------------------------------------------------

    def message(self, reasoning: str, answer: str) -> dict[str, Any]:
        """The assistant message of a completion that was not streamed."""
        if self.format == "none":
            return {"role": "assistant", "content": answer}
        if self.format == "think":
            block = f"{OPEN_TAG}\n{_defuse(reasoning)}\n{CLOSE_TAG}\n\n" if reasoning else ""
            return {"role": "assistant", "content": block + answer}
        # The field is there even when empty (a 'direct' run): a reasoning variant always has it.
        return {"role": "assistant", "content": answer, self.format: reasoning}


def _tag_prefix_len(text: str) -> int:
    """How many characters at the end of ``text`` could begin a think tag."""
    for size in range(min(len(CLOSE_TAG) - 1, len(text)), 0, -1):
        tail = text[-size:]
        if CLOSE_TAG.startswith(tail) or OPEN_TAG.startswith(tail):
            return size
    return 0
