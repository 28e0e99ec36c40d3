"""Put one item to the model in one mode and score the answer: one :class:`Record`."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from time import perf_counter
from typing import Any

from thinkchain.chain.answers import expected_kind, extract_answer_for, normalise_gold, same_answer
from thinkchain.chain.backend import Backend, Message
from thinkchain.chain.events import ChainResult, Step
from thinkchain.chain.loop import Chain
from thinkchain.chain.settings import ChainSettings, StrategySettings
from thinkchain.chain.strategies import make_run
from thinkchain.eval.items import Item
from thinkchain.eval.modes import EvalMode
from thinkchain.eval.records import Record
from thinkchain.eval.stats import sample_vote


@dataclass(frozen=True)
class SolveConfig:
    """What every item of a run shares."""

    settings: ChainSettings  # the chain settings; each mode sets its own chain mode
    # How a strategy's mode (sc, ...) runs its chains.
    strategy: StrategySettings = field(default_factory=lambda: StrategySettings(strategy="sc"))

    @property
    def k(self) -> int:
        return self.strategy.k

    def plan_for(self, mode: EvalMode) -> StrategySettings:
        """The strategy settings of ``mode``'s runs: the shared ones, under its strategy."""
        return StrategySettings.model_validate(
            {**self.strategy.model_dump(), "strategy": mode.strategy}
        )

    def describe(self) -> dict[str, Any]:
        """What decides the answers: a resumed run must not change it halfway."""
        plan = self.strategy
        described: dict[str, Any] = {
            "settings": self.settings.model_dump(mode="json"),
            "k": plan.k,
            "sc_temperature": plan.temperature,
            "early_stop": plan.early_stop,
        }
        if plan.early_stop == "agree":  # meaningless otherwise, so not part of the setup
            described["agree_n"] = plan.agree_n
        return described


async def solve(backend: Backend, config: SolveConfig, mode: EvalMode, item: Item) -> Record:
    """Run ``item`` in ``mode``; a failed run is an incorrect record with its error kind."""
    gold = normalise_gold(item.answer)
    context, earlier = await _earlier_turns(backend, config, mode, item)
    started_at = time.time()
    started = perf_counter()
    plan = config.plan_for(mode)
    run = make_run(backend, mode.settings(config.settings), plan, expect=expected_kind(gold))
    result = await run.arun(item.question, context=context)
    answer = result.answer.text if result.answer else None
    decision = result.decision
    extra = _run_row(result, mode) if decision is not None else _chain_row(result, mode)
    if earlier:
        extra["before"] = earlier
    prediction = decision.winner if decision is not None else extract_answer_for(answer, gold)
    usage = result.run_usage
    return Record(
        id=item.id,
        mode=mode.name,
        gold=gold,
        prediction=prediction,
        correct=same_answer(prediction, gold),
        steps=sum(len(c.steps) for c in result.chains) if decision else len(result.steps),
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        cached_tokens=usage.cached_tokens,
        seconds=perf_counter() - started,
        started_at=started_at,
        error=result.error.kind if result.error else None,
        error_message=result.error.message if result.error else None,
        answer=answer,
        level=item.level,
        extra=extra,
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


def _chain_row(result: ChainResult, mode: EvalMode) -> dict[str, Any]:
    """What a row keeps of one chain, to read it afterwards."""
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
    return extra


def _run_row(result: ChainResult, mode: EvalMode) -> dict[str, Any]:
    """What a row keeps of a strategy's run: the decision and each chain's answer."""
    decision = result.decision
    assert decision is not None
    chains = result.chains
    extra: dict[str, Any] = {
        "votes": decision.counts,
        "samples": len(chains),
        "stopped_early": decision.stopped_early,
        "sample_answers": [c.answer.text if c.answer else None for c in chains],
        "cut": sum(c.repeated_steps + c.degenerate_outputs for c in chains),
    }
    if mode.python:
        # Each chain's code and what it printed, so a decision over code chains can be read.
        extra["sample_runs"] = [
            [run.to_dict() for step in c.steps for run in step.runs] for c in chains
        ]
    if mode.verify:
        # Each chain's check, as for a single chain: the verification table counts them.
        extra["samples_revised"] = [c.revised for c in chains]
        extra["sample_answers_before_check"] = [
            c.answer_before_check.text if c.answer_before_check else None for c in chains
        ]
    return extra


def rescore(record: Record) -> Record:
    """``record`` scored again from its stored answer text(s) with today's normaliser."""
    stored = sample_vote(record)  # None for a row of one chain
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
