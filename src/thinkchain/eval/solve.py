"""Put one item to the model in one mode and score the answer: one :class:`Record`."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from time import perf_counter
from typing import Any

from ..answers import expected_kind, extract_answer_for, normalise_gold, same_answer
from ..backends.base import Backend, Message
from ..chain import Chain
from ..events import ChainError, Step, Usage
from ..settings import ChainSettings
from ..strategies import EarlyStop, SelfConsistency
from .items import Item
from .modes import EvalMode
from .records import Record
from .stats import sample_vote


@dataclass(frozen=True)
class SolveConfig:
    """What every item of a run shares."""

    settings: ChainSettings  # the chain settings; each mode sets its own chain mode
    k: int = 5  # samples of self-consistency
    sc_temperature: float = 0.7
    early_stop: EarlyStop = "decisive"
    agree_n: int = 3  # early_stop "agree": this many first answers must agree

    def describe(self) -> dict[str, Any]:
        """What decides the answers: a resumed run must not change it halfway."""
        described: dict[str, Any] = {
            "settings": self.settings.model_dump(mode="json"),
            "k": self.k,
            "sc_temperature": self.sc_temperature,
            "early_stop": self.early_stop,
        }
        if self.early_stop == "agree":  # meaningless otherwise, so not part of the setup
            described["agree_n"] = self.agree_n
        return described


@dataclass
class _Outcome:
    answer: str | None
    prediction: str | None
    steps: int
    usage: Usage
    error: ChainError | None
    extra: dict[str, Any]


async def solve(backend: Backend, config: SolveConfig, mode: EvalMode, item: Item) -> Record:
    """Run ``item`` in ``mode``; a failed chain is an incorrect record with its error kind."""
    gold = normalise_gold(item.answer)
    context, earlier = await _earlier_turns(backend, config, mode, item)
    started_at = time.time()
    started = perf_counter()
    if mode.strategy == "sc":
        outcome = await _self_consistency(backend, config, mode, item.question, gold, context)
    else:
        outcome = await _chain(backend, config, mode, item.question, gold, context)
    if earlier:
        outcome.extra["before"] = earlier
    return Record(
        id=item.id,
        mode=mode.name,
        gold=gold,
        prediction=outcome.prediction,
        correct=same_answer(outcome.prediction, gold),
        steps=outcome.steps,
        prompt_tokens=outcome.usage.prompt_tokens,
        completion_tokens=outcome.usage.completion_tokens,
        cached_tokens=outcome.usage.cached_tokens,
        seconds=perf_counter() - started,
        started_at=started_at,
        error=outcome.error.kind if outcome.error else None,
        error_message=outcome.error.message if outcome.error else None,
        answer=outcome.answer,
        level=item.level,
        extra=outcome.extra,
    )


async def _earlier_turns(
    backend: Backend, config: SolveConfig, mode: EvalMode, item: Item
) -> tuple[list[Message], list[dict[str, Any]]]:
    """A follow-up's conversation: each earlier question asked by one chain of the mode's
    settings, its answer the turn before the next.  Only the follow-up is timed and scored;
    what came before is kept in the row.  A turn without an answer leaves none, as on the
    page."""
    context: list[Message] = []
    earlier: list[dict[str, Any]] = []
    chain = Chain(backend, mode.settings(config.settings))
    for question in item.before:
        result = await chain.arun(question, context=context)
        answer = result.answer.text if result.answer else None
        earlier.append({"question": question, "answer": answer, "steps": len(result.steps)})
        if answer is not None:
            context += [
                {"role": "user", "content": question},
                {"role": "assistant", "content": answer},
            ]
    return context, earlier


async def _chain(
    backend: Backend,
    config: SolveConfig,
    mode: EvalMode,
    question: str,
    gold: str | None,
    context: Sequence[Message] = (),
) -> _Outcome:
    result = await Chain(backend, mode.settings(config.settings)).arun(question, context=context)
    answer = result.answer.text if result.answer else None
    # With +verify the chain's last step is the check, and `answer` is the answer it left.
    extra: dict[str, Any] = {"revised": result.revised} if mode.verify else {}
    if result.answer_before_check is not None:
        # What the chain had answered before the check overturned it: whether verification
        # fixes more answers than it breaks is read from this.
        extra["answer_before_check"] = result.answer_before_check.text
    # Repeated steps and degenerate output that the chain cut: "no mode ever loops".
    extra["cut"] = result.repeated_steps + result.degenerate_outputs
    extra["cut_steps"] = [cut.to_dict() for cut in result.cuts]  # what was cut, to read why
    # The steps themselves, so an outlier (a wrong or very long chain) can be read afterwards.
    extra["chain"] = [chain_row(step) for step in result.steps]
    prediction = extract_answer_for(answer, gold)
    return _Outcome(answer, prediction, len(result.steps), result.usage, result.error, extra)


async def _self_consistency(
    backend: Backend,
    config: SolveConfig,
    mode: EvalMode,
    question: str,
    gold: str | None,
    context: Sequence[Message] = (),
) -> _Outcome:
    strategy = SelfConsistency(
        backend,
        mode.settings(config.settings),
        k=config.k,
        temperature=config.sc_temperature,
        early_stop=config.early_stop,
        agree_n=config.agree_n,
        expect=expected_kind(gold),
    )
    outcome = await strategy.arun(question, context=context)
    extra: dict[str, Any] = {
        "votes": outcome.vote.counts,
        "samples": len(outcome.samples),
        "stopped_early": outcome.stopped_early,
        "sample_answers": [s.answer.text if s.answer else None for s in outcome.samples],
        "cut": sum(s.repeated_steps + s.degenerate_outputs for s in outcome.samples),
    }
    if mode.python:
        # Each sample's code and what it printed, so a vote over code chains can be read.
        extra["sample_runs"] = [
            [run.to_dict() for step in sample.steps for run in step.runs]
            for sample in outcome.samples
        ]
    if mode.verify:
        # Each sample's check, as for a single chain: the verification table counts samples.
        extra["samples_revised"] = [s.revised for s in outcome.samples]
        extra["sample_answers_before_check"] = [
            s.answer_before_check.text if s.answer_before_check else None for s in outcome.samples
        ]
    return _Outcome(
        answer=outcome.answer,
        prediction=outcome.vote.winner,
        steps=sum(len(sample.steps) for sample in outcome.samples),
        usage=outcome.usage,
        error=outcome.error,
        extra=extra,
    )


def rescore(record: Record) -> Record:
    """``record`` scored again from its stored answer text(s) with today's normaliser."""
    stored = sample_vote(record) if record.mode.startswith("sc") else None
    if stored is not None:
        prediction = stored.winner
    else:
        prediction = extract_answer_for(record.answer, record.gold)
    record.prediction = prediction
    record.correct = same_answer(prediction, record.gold)
    return record


def chain_row(step: Step) -> dict[str, object]:
    """A step as an eval row keeps it: title, content, and its code runs when it has any."""
    row: dict[str, object] = {"title": step.title, "content": step.content}
    if step.runs:
        row["runs"] = [run.to_dict() for run in step.runs]
    return row
