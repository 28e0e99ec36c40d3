"""``POST /v1/responses``: the Responses API, one more formatter of a run's items.

A plain upstream model is passed through to the upstream's own ``/v1/responses`` (with an
error that says so when it has none).  A reasoning variant reads the request as the chat
request the chain plans from (response_input.py), runs it exactly as chat completions do, and
writes the items out as a ``reasoning`` output item whose summary holds the steps and a
``message`` item holding the answer (response_events.py), whole or streamed.  Responses are
kept in memory, bounded, for ``previous_response_id`` (response_store.py).

Where the steps go: the reasoning item, which every Responses client reads.  A request may ask
for ``thinkchain.reasoning_format`` 'think' (tags in the message text) or 'none'; a server
started with ``--reasoning-format none`` shows no steps here either.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from thinkchain.chain.backend import Backend
from thinkchain.proxy import code_steps
from thinkchain.proxy.errors import ProxyError, bad_request
from thinkchain.proxy.proxy_settings import ReasoningFormat
from thinkchain.proxy.reasoning import Content, Finished, Item, Outcome, Plan
from thinkchain.proxy.reasoning_format import ChatReasoning
from thinkchain.proxy.reasoning_http import ReasoningRun
from thinkchain.proxy.response_events import ResponseWriter, message_item, new_id, reasoning_item
from thinkchain.proxy.response_input import chat_view, renamed
from thinkchain.proxy.response_schemas import ResponsesRequest
from thinkchain.proxy.response_store import ResponseStore, owner_of
from thinkchain.proxy.streaming import event_stream

if TYPE_CHECKING:
    from thinkchain.proxy.app import ProxyState

log = logging.getLogger("thinkchain.proxy")


async def create(request: Request, data: dict[str, Any], raw: bytes, state: ProxyState) -> Response:
    model = data.get("model")
    if not isinstance(model, str) or not model:
        raise bad_request("'model' must name a model", param="model")
    target = await state.catalog.resolve(model)
    if target.kind == "plain" and not target.model.local:
        headers = dict(request.headers.items())
        return await state.forwarder.forward(
            target.model, "/responses", raw, headers, explain_missing=True
        )
    body = ResponsesRequest.model_validate(data)
    if target.kind == "plain":
        raise bad_request(
            f"the in-process model {model!r} is served as itself on /v1/chat/completions only; "
            f"its reasoning variant {state.catalog.variant_name(model)!r} is served here too",
            param="model",
            code="unsupported_endpoint",
        )
    if body.background:
        raise bad_request("background responses are not supported", param="background")
    if body.conversation is not None:
        raise bad_request(
            "conversations are not kept here; send previous_response_id or the whole input",
            param="conversation",
        )
    owner = owner_of(request.headers.get("authorization"), bool(state.settings.api_keys))
    history = _history(body, state.responses, owner)
    view = chat_view(body, history)
    try:
        plan = code_steps.plan(view.request, state.settings)
    except ProxyError as err:
        raise renamed(err, view.sources) from None
    turn = Turn(state.responses, owner, history + view.turn, body.store)
    fmt = _format(body, state.settings.reasoning_format)
    writer = ResponseWriter(body.model, _echo(body, data))
    backend = state.catalog.backend_for(target.model)
    return await _respond(request, body, plan, backend, state, writer, fmt, turn)


def _history(
    body: ResponsesRequest, store: ResponseStore, owner: str | None
) -> list[dict[str, str]]:
    """The conversation of the response this one goes on from; [] when none is named."""
    if body.previous_response_id is None:
        return []
    if not store.enabled:
        raise bad_request(
            "this server keeps no responses (--max-stored-responses 0): send the whole "
            "conversation as input instead of previous_response_id",
            param="previous_response_id",
            code="previous_response_not_found",
        )
    kept = store.get(body.previous_response_id, owner)
    if kept is None:
        raise bad_request(
            f"no response {body.previous_response_id!r} is kept here: it was never made, made "
            "with store false or another key, or forgotten (responses are kept in memory, the "
            "least recently used dropped first, none across a restart); send the whole "
            "conversation as input instead",
            param="previous_response_id",
            code="previous_response_not_found",
        )
    return list(kept)


def _format(body: ResponsesRequest, server: ReasoningFormat) -> ReasoningFormat:
    """Where the steps go: the reasoning item, unless the request (or the server) says none,
    or the request asks for think tags in the text."""
    asked = body.thinkchain.reasoning_format if body.thinkchain is not None else None
    if asked is not None:
        return asked
    return "none" if server == "none" else "reasoning_content"


def _echo(body: ResponsesRequest, data: dict[str, Any]) -> dict[str, Any]:
    """What a response repeats of its request, as OpenAI's do."""
    tools = data.get("tools")
    return {
        "instructions": body.instructions,
        "max_output_tokens": body.max_output_tokens,
        "previous_response_id": body.previous_response_id,
        "temperature": body.temperature,
        "top_p": None,
        "parallel_tool_calls": bool(data.get("parallel_tool_calls", True)),
        "tool_choice": data.get("tool_choice", "auto"),
        "tools": tools if isinstance(tools, list) else [],
        "metadata": body.metadata or {},
        "store": body.store,
        "text": {"format": {"type": "text"}},
        "reasoning": {"effort": None, "summary": None},
        "truncation": "disabled",
        "user": data.get("user"),
        "background": False,
    }


class Turn:
    """This request's place in a conversation: kept, when it succeeds, for what comes next."""

    def __init__(
        self, store: ResponseStore, owner: str | None, asked: list[dict[str, str]], keep: bool
    ) -> None:
        self.store = store
        self.owner = owner
        self.asked = asked  # the kept conversation before this response, and its input
        self.keep = keep

    def done(self, response_id: str, outcome: Outcome) -> None:
        if self.keep and not outcome.failed:
            answer = {"role": "assistant", "content": outcome.answer or ""}
            self.store.put(response_id, self.owner, [*self.asked, answer])


class Steps:
    """Where a response puts the steps: its reasoning item, or think tags in the message."""

    def __init__(self, fmt: ReasoningFormat, writer: ResponseWriter) -> None:
        self.item = fmt in ("reasoning_content", "reasoning")
        self.tags = ChatReasoning("none" if self.item else fmt)
        self.writer = writer

    def reasoning(self, text: str) -> list[bytes]:
        if self.item:
            return self.writer.reasoning(text)
        delta = self.tags.reasoning(text)
        return self.writer.content(delta["content"]) if delta else []

    def content(self, text: str) -> list[bytes]:
        return self.writer.content(self.tags.content(text)["content"])

    def close(self) -> list[bytes]:
        delta = self.tags.close()
        return self.writer.content(delta["content"]) if delta else []

    def output(self, outcome: Outcome) -> list[dict[str, Any]]:
        """The output items of a response that was not streamed; as in a stream, the item a
        spent budget cut short is the last, and 'incomplete'."""
        items = []
        if self.item and outcome.reasoning:
            items.append(reasoning_item(new_id("rs"), outcome.reasoning))
        text = self.tags.message(outcome.reasoning, outcome.answer or "")["content"]
        if text:
            items.append(message_item(new_id("msg"), text))
        if outcome.over_budget and items:
            items[-1]["status"] = "incomplete"
        return items


def _error(err: ProxyError) -> ProxyError:
    """A chain's error, named as the Responses API names what it is about."""
    if err.param == "messages":
        err.param = "input"
    return err


async def _respond(
    request: Request,
    body: ResponsesRequest,
    plan: Plan,
    backend: Backend,
    state: ProxyState,
    writer: ResponseWriter,
    fmt: ReasoningFormat,
    turn: Turn,
) -> Response:
    retry_after = state.settings.retry_after_seconds
    run = ReasoningRun.start(backend, plan, state.slots, retry_after, body.model)
    steps = Steps(fmt, writer)
    try:
        if not body.stream:
            outcome = await run.whole(request)
            status = "incomplete" if outcome.over_budget else "completed"
            whole = writer.response(status, outcome=outcome, output=steps.output(outcome))
            turn.done(writer.id, outcome)
            return JSONResponse(whole)
        items = await run.opened(request)
    except ProxyError as err:
        raise _error(err) from None
    return event_stream(_events(items, run, steps, writer, turn), run.close)


async def _events(
    items: AsyncGenerator[Item, None],
    run: ReasoningRun,
    steps: Steps,
    writer: ResponseWriter,
    turn: Turn,
) -> AsyncGenerator[bytes, None]:
    for event in writer.start():
        yield event

    try:
        async with aclosing(items) as every_item:
            async for item in every_item:
                if isinstance(item, Content):
                    events = steps.content(item.text)
                elif isinstance(item, Finished):
                    outcome = item.outcome
                    try:
                        run.finished(outcome)
                    except ProxyError as err:
                        events = writer.fail(_error(err))
                    else:
                        events = steps.close() + writer.finish(outcome)
                        turn.done(writer.id, outcome)
                    for event in events:
                        yield event
                    return
                else:
                    events = steps.reasoning(item.text)
                for event in events:
                    yield event
    except Exception:  # a bug: the stream says so in the API's shape; the log has the details
        log.exception("a responses stream failed")
        for event in writer.fail(ProxyError(500, "internal error", code="internal_error")):
            yield event
