"""Both ways: a program and prose side by side, more of both only while they disagree.

A new strategy speaks the run protocol, so the terminal, the proxy, eval and the history show it
with no code of their own for it (the last tests here run it through each of them).
"""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any

import pytest
from rich.console import Console

from thinkchain import ChainSettings
from thinkchain.chain.backend import GenerationRequest
from thinkchain.chain.events import ChainCompleted, ChainFailed, ChainRead, InChain, StepStarted
from thinkchain.chain.settings import StrategySettings
from thinkchain.chain.strategies import BothWays, make_run
from thinkchain.cli.render import TerminalView
from thinkchain.eval.items import Item
from thinkchain.eval.modes import parse_mode
from thinkchain.eval.solve import SolveConfig, solve
from thinkchain.history import ChainRecorder, HistoryStore
from thinkchain.models.backends.scripted import Reply, ScriptedBackend
from thinkchain.proxy.reasoning import Content, Finished, Reasoning, RunTranslator

SETTINGS = ChainSettings(mode="single-pass", min_steps=1, retry_base_delay=0, seed=0)


def is_program(request: GenerationRequest) -> bool:
    return "```python" in str(request.messages[0]["content"])


def backend(program: list[str], prose: list[str], *, parallel: int | None = None, delay=0.0):
    """The n-th program chain answers program[n], the n-th prose chain prose[n]."""
    asked = {"program": 0, "prose": 0}

    def reply(request: GenerationRequest) -> Any:
        kind = "program" if is_program(request) else "prose"
        answers = program if kind == "program" else prose
        answer = answers[asked[kind]]
        asked[kind] += 1
        text = f"### Step 1: Work it out\nThe {kind} way.\n\n### Answer\n**{answer}**\n"
        return Reply(text, delay=delay)

    return ScriptedBackend([reply], repeat_last=True, parallel_sequences=parallel)


def test_an_agreeing_pair_decides_at_once_on_the_program() -> None:
    model = backend(["42"], ["42"], delay=0.005)
    events = list(BothWays(model, SETTINGS, budget=6).stream("What is 6 * 7?"))
    result = events[-1].result
    assert isinstance(events[-1], ChainCompleted)
    decision = result.decision
    assert decision.strategy == "both" and decision.counts == {"42": 2}
    assert decision.chosen == 0 and len(result.chains) == 2  # no third chain was needed
    assert result.answer.text == "**42**"
    # The pair decodes side by side: both chains began before either finished.
    first_read = next(i for i, e in enumerate(events) if isinstance(e, ChainRead))
    began = {e.chain for e in events[:first_read] if isinstance(e, InChain)}
    assert began == {0, 1}
    # Chain 0 writes programs, chain 1 reasons in prose, both at the chain's own temperature.
    by_kind = {is_program(r): r for r in model.requests}
    assert by_kind[True].temperature == by_kind[False].temperature == SETTINGS.temperature
    reads = [e for e in events if isinstance(e, ChainRead)]
    assert sorted((r.chain, r.role) for r in reads) == [(0, "program"), (1, "prose")]


def test_disagreement_draws_more_chains_one_at_a_time_until_one_answer_leads() -> None:
    model = backend(["42", "42"], ["41"], parallel=1)
    result = BothWays(model, SETTINGS, budget=6, temperature=0.7).run("What is 6 * 7?")
    decision = result.decision
    assert list(decision.reads) == ["42", "41", "42"] and decision.winner == "42"
    assert decision.chosen == 0 and decision.voters == 3
    third = model.requests[2]
    assert is_program(third) and third.temperature == 0.7 and third.seed == 2


def test_a_tie_is_broken_by_another_chain_not_by_finishing_order() -> None:
    # 42 vs 41, then 40 vs 41: prose leads 2 to 1 once its second chain has spoken.
    model = backend(["42", "40"], ["41", "41"], parallel=1)
    result = BothWays(model, SETTINGS, budget=6).run("q?")
    assert list(result.decision.reads) == ["42", "41", "40", "41"]
    assert result.decision.winner == "41" and result.decision.chosen == 1


def test_a_tie_left_when_the_budget_is_spent_goes_to_the_program() -> None:
    model = backend(["42", "40"], ["41", "39"], parallel=1)
    result = BothWays(model, SETTINGS, budget=4).run("q?")
    assert len(result.chains) == 4 and result.decision.winner == "42"
    assert result.decision.chosen == 0


def test_the_budget_is_checked() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        BothWays(ScriptedBackend(), SETTINGS, budget=1)
    assert isinstance(
        make_run(ScriptedBackend(), SETTINGS, StrategySettings(strategy="both")), BothWays
    )


# -- every consumer shows it with no code of its own ------------------------------------------


def both_events() -> list[Any]:
    model = backend(["42", "42"], ["41"], parallel=1)
    return list(make_run(model, SETTINGS, StrategySettings(strategy="both", k=4)).stream("6*7?"))


def test_the_proxy_writes_a_line_per_chain_the_decision_and_the_chosen_reasoning() -> None:
    translator = RunTranslator()
    items = [item for event in both_events() for item in translator.feed(event)]
    reasoning = "".join(i.text for i in items if isinstance(i, Reasoning))
    assert reasoning.startswith("Program 1 of 4: answered 42 after 1 step(s)\n")
    assert "Prose 2 of 4: answered 41 after 1 step(s)" in reasoning
    assert "Vote: 42 (2 of 3 votes); the reasoning of program 1:\n\n**Step 1: Work it out**" in (
        reasoning
    )
    assert "".join(i.text for i in items if isinstance(i, Content)) == "**42**"
    finished = items[-1]
    assert isinstance(finished, Finished) and finished.outcome.trace["strategy"] == "both"


def test_the_terminal_shows_each_chain_the_vote_and_the_chosen_chain() -> None:
    err, out = io.StringIO(), io.StringIO()
    view = TerminalView(Console(file=err, width=200), out, live_answer=False)
    for event in both_events():
        view.handle(event)
    shown = err.getvalue()
    assert "program 1/4: 42" in shown and "prose 2/4: 41" in shown
    assert "vote: 42 ×2, 41 ×1 → 42 (2 of 4 programs)" in shown
    assert "Winning chain: program 1" in shown and "Step 1: Work it out" in shown
    assert out.getvalue() == "**42**\n"


def test_eval_scores_it_and_keeps_every_chains_answer(tmp_path) -> None:
    model = backend(["42", "42"], ["41"], parallel=1)
    config = SolveConfig(SETTINGS, StrategySettings(strategy="sc", k=4))
    record = asyncio.run(solve(model, config, parse_mode("both"), Item("x", "6*7?", "42")))
    assert record.correct and record.prediction == "42" and record.mode == "both"
    assert record.extra["votes"] == {"42": 2, "41": 1}
    assert record.extra["sample_answers"] == ["**42**", "**41**", "**42**"]


def test_the_history_keeps_the_chosen_chain(tmp_path) -> None:
    path = tmp_path / "history.sqlite3"
    recorder = ChainRecorder(path, source="ask")
    events = both_events()
    for event in events:
        recorder.handle(event)
    recorder.close()
    with HistoryStore(path) as store:
        [kept] = store.list()
        record = store.get(kept.id)
    assert record.answer.text == "**42**" and [s.title for s in record.steps] == ["Work it out"]
    assert record.status == "completed"
    assert not any(isinstance(e, ChainFailed) for e in events)
    assert any(isinstance(e, InChain) and isinstance(e.event, StepStarted) for e in events)
    assert json.loads(json.dumps(events[-1].result.to_dict()))["vote"]["winner"] == "42"
