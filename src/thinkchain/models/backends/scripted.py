"""A backend that replays a script: for tests, demos and benchmarks of the engine itself.

Each call takes the next item of the script:

* a string: the reply, streamed in small chunks;
* a :class:`Reply`: the reply with its finish reason, usage, chunking and pacing;
* a :class:`Fault`: raise an error, before any text or after part of the reply;
* a callable taking the request and returning one of the above.

Every request is recorded in ``requests`` so tests can assert exactly what the model was sent.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Union

from thinkchain.chain.backend import (
    BackendError,
    Capabilities,
    Chunk,
    Completion,
    GenerationRequest,
    Message,
    RequestRejected,
    TextChunk,
)
from thinkchain.chain.events import Usage

_WORDISH = re.compile(r"\S+\s*|\s+")


@dataclass(frozen=True)
class Reply:
    text: str
    finish_reason: str = "stop"
    usage: Usage | None = None
    chunk_size: int | None = None  # characters per chunk; None streams word by word
    delay: float = 0.0  # seconds before each chunk
    first_delay: float = 0.0  # extra seconds before the first chunk


@dataclass(frozen=True)
class Fault:
    error: BackendError
    after_text: str = ""  # text streamed before the fault (a stream cut mid-step)
    delay: float = 0.0  # seconds before the fault (a stall)


ScriptItem = Union[str, Reply, Fault, Callable[[GenerationRequest], "ScriptItem"]]


def _chunks(text: str, size: int | None) -> list[str]:
    if size is None:
        return _WORDISH.findall(text)
    return [text[i : i + size] for i in range(0, len(text), size)]


def count_words(messages: Sequence[Message]) -> int:
    """A stable stand-in for a tokenizer: about one token per four characters."""
    return sum(max(1, len(m.get("content", "")) // 4) for m in messages)


@dataclass
class ScriptedBackend:
    script: list[ScriptItem] = field(default_factory=list)
    model_name: str = "scripted"
    context_tokens: int | None = 32768
    # Whether to claim that schemas were enforced (like a server with structured output).
    enforces_schema: bool = False
    # When the script runs out: repeat the last item instead of failing.
    repeat_last: bool = False
    # Sequences it claims to serve at once (None: any number, like a server).
    parallel_sequences: int | None = None
    requests: list[GenerationRequest] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"scripted:{self.model_name}"

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(
            parallel_sequences=self.parallel_sequences,
            structured_output=("scripted",) if self.enforces_schema else (),
        )

    @property
    def model(self) -> str:
        return self.model_name

    def context_window(self) -> int | None:
        return self.context_tokens

    def count_tokens(self, messages: Sequence[Message]) -> int | None:
        return count_words(messages)

    def extend(self, items: Iterable[ScriptItem]) -> None:
        self.script.extend(items)

    def _next_item(self, request: GenerationRequest) -> ScriptItem:
        index = len(self.requests) - 1
        if index < len(self.script):
            item = self.script[index]
        elif self.repeat_last and self.script:
            item = self.script[-1]
        else:
            raise RequestRejected(
                f"the script has no reply for call {index + 1} ({request.purpose})",
                server=self.name,
            )
        while callable(item) and not isinstance(item, (Reply, Fault, str)):
            item = item(request)
        return item

    async def generate(self, request: GenerationRequest) -> AsyncIterator[Chunk]:
        self.requests.append(request)
        item = self._next_item(request)
        if isinstance(item, Fault):
            for piece in _chunks(item.after_text, None):
                yield TextChunk(piece)
            if item.delay:
                await asyncio.sleep(item.delay)
            raise item.error
        reply = Reply(item) if isinstance(item, str) else item
        assert isinstance(reply, Reply)
        pieces = _chunks(reply.text, reply.chunk_size)
        if reply.first_delay:
            await asyncio.sleep(reply.first_delay)
        finish = reply.finish_reason
        sent = 0
        for piece in pieces:
            if request.halt.is_set():
                finish = "stop"
                break
            if reply.delay:
                await asyncio.sleep(reply.delay)
            yield TextChunk(piece)
            sent += 1
        usage = reply.usage or Usage(
            prompt_tokens=count_words(request.messages), completion_tokens=sent
        )
        yield Completion(
            usage=usage,
            finish_reason=finish,
            server=self.name,
            schema_enforced=self.enforces_schema and request.schema is not None,
        )


def step_json(title: str, content: str, next_action: str = "continue") -> str:
    """A step as a model following the format would write it."""
    return json.dumps(
        {"title": title, "content": content, "next_action": next_action}, ensure_ascii=False
    )


def demo_backend() -> ScriptedBackend:
    """A canned chain for the strawberry question: for demos and browser tests, no model."""
    steps = [
        step_json(
            "Restating the question",
            "We need to count how many times the letter **r** appears in *strawberry*.",
        ),
        step_json(
            "Spelling the word out",
            "s-t-r-a-w-b-e-r-r-y: the letters are s, t, **r**, a, w, b, e, **r**, **r**, y.",
        ),
        step_json(
            "Counting and checking",
            "Position 3 is r, positions 8 and 9 are r. Counting again from the end: y, r, r, "
            "e, b, w, a, r, t, s gives the same three. I am confident the count is 3.",
            "final_answer",
        ),
    ]
    answer = "There are **3** letters r in *strawberry* (positions 3, 8 and 9)."
    direct = "There are 2 letters r in strawberry."

    chain = (
        "".join(
            f"### Step {i}: {json.loads(text)['title']}\n{json.loads(text)['content']}\n\n"
            for i, text in enumerate(steps, start=1)
        )
        + f"### Answer\n{answer}\n"
    )

    # With code steps on, the chain counts with a program first, then reads its output.
    code_chain = (
        "### Step 1: Count the letters with a program\n"
        "Counting letters by eye is error-prone, so let Python do it.\n"
        '```python\nword = "strawberry"\nprint(word.count("r"))\n```\n'
    )
    code_rest = (
        "### Step 2: Read the output\nThe program printed 3: the letter r occurs 3 times.\n\n"
        "### Step 3: Check by position\n"
        "s-t-**r**-a-w-b-e-**r**-**r**-y: positions 3, 8 and 9, so 3 again.\n\n"
        f"### Answer\n{answer}\n"
    )

    def by_purpose(request: GenerationRequest) -> ScriptItem:
        if request.purpose == "chain":  # single-pass: the whole chain in one reply
            system = request.messages[0].get("content", "") if request.messages else ""
            if "```python" in system:
                ran = any(m["role"] == "assistant" for m in request.messages)
                return Reply(code_rest if ran else code_chain, delay=0.02)
            return Reply(chain, delay=0.02)
        if request.purpose in ("direct", "cot"):
            return Reply(direct, delay=0.01)
        if request.purpose == "answer":
            return Reply(answer, delay=0.02)
        done = sum(1 for m in request.messages if m["role"] == "assistant")
        return Reply(steps[min(done, len(steps) - 1)], delay=0.02)

    return ScriptedBackend(script=[by_purpose], repeat_last=True, model_name="demo")
