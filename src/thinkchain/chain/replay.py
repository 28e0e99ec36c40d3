"""Tell a finished chain again as the events it would stream, for consumers that only read
chain events (the terminal view, the page, the history)."""

from __future__ import annotations

from thinkchain.chain.events import (
    AnswerDone,
    AnswerStarted,
    ChainCompleted,
    ChainError,
    ChainEvent,
    ChainFailed,
    ChainResult,
    ChainStarted,
    StepDelta,
    StepDone,
    StepStarted,
)


def replay(result: ChainResult) -> list[ChainEvent]:
    """``result`` as events, each step's title and content as one delta each.

    A chain with an answer ends in ChainCompleted even when a stop raced its last event (its
    answer stands, as it does in a vote); one without ends in ChainFailed.
    """
    events: list[ChainEvent] = [
        ChainStarted(result.question, result.lang, result.model, result.mode)
    ]
    for step in result.steps:
        events += [
            StepStarted(step.index),
            StepDelta(step.index, "title", step.title),
            StepDelta(step.index, "content", step.content),
            StepDone(step),
        ]
    if result.answer is not None:
        events += [AnswerStarted(), AnswerDone(result.answer), ChainCompleted(result)]
    else:
        events.append(ChainFailed(result.error or ChainError("answer_failed", "no answer"), result))
    return events
