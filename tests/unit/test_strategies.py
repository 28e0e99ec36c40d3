"""Self-consistency on the scripted backend: K chains, one vote, early stopping."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest

from thinkchain import ChainSettings
from thinkchain.chain.backend import GenerationRequest
from thinkchain.chain.cancel import CancelToken
from thinkchain.chain.events import (
    ChainCompleted,
    ChainFailed,
    ChainRead,
    ChainStarted,
    Decided,
    InChain,
    RunStarted,
)
from thinkchain.chain.strategies import SelfConsistency
from thinkchain.models.backends.scripted import Reply, ScriptedBackend, step_json

FAST = {"retry_base_delay": 0.0, "retry_max_delay": 0.0}
DIRECT = ChainSettings(mode="direct", **FAST)


def answers_by_seed(replies: list[str], delay: float = 0.0) -> ScriptedBackend:
    """Sample i (seeded base + i) replies ``replies[i]``: one call per sample in direct mode."""

    def reply(request: GenerationRequest) -> Reply:
        return Reply(replies[request.seed or 0], delay=delay)

    return ScriptedBackend([reply], repeat_last=True)


@dataclass
class OneAtATime(ScriptedBackend):
    """Like the in-process model: decodes one sequence at a time."""

    parallel_sequences: int | None = 1


def sequential(replies: list[str]) -> OneAtATime:
    def reply(request: GenerationRequest) -> Reply:
        return Reply(replies[request.seed or 0])

    return OneAtATime([reply], repeat_last=True)


def test_majority_wins_and_the_winning_chain_is_kept() -> None:
    backend = answers_by_seed(["Answer: 4", "It is **3**.", "3", "Answer: three", "4"])
    result = SelfConsistency(backend, DIRECT, k=5, early_stop="off").run("2+1?")
    decision = result.decision
    assert decision.winner == "3"
    assert decision.counts == {"4": 2, "3": 3}
    assert list(decision.reads) == ["4", "3", "3", "3", "4"]
    assert decision.chosen == 1  # the first sample that gave the winning answer
    assert result.answer.text == "It is **3**."
    # The run's result is the chosen chain's, with every chain beside it.
    chosen = result.chains[1]
    assert (result.steps, result.answer, result.question) == (
        chosen.steps,
        chosen.answer,
        chosen.question,
    )
    assert not decision.stopped_early and result.ok and result.error is None
    assert len(result.chains) == 5
    # Usage adds up every sample.
    assert result.run_usage.completion_tokens == sum(
        s.usage.completion_tokens for s in result.chains
    )


def test_samples_differ_by_seed_and_use_the_sampling_temperature() -> None:
    backend = answers_by_seed(["1"] * 4)
    settings = DIRECT.model_copy(update={"seed": 10})
    SelfConsistency(backend, settings, k=3, temperature=0.9, early_stop="off").run("q?")
    assert sorted(r.seed for r in backend.requests) == [10, 11, 12]
    assert {r.temperature for r in backend.requests} == {0.9}


def test_a_tie_is_settled_by_another_sample_never_by_finishing_order() -> None:
    # Sample 0 would finish first on any backend; the fifth sample breaks the tie instead.
    backend = answers_by_seed(["5", "6", "6", "5", "6"])
    result = SelfConsistency(backend, DIRECT, k=4, early_stop="off").run("q?")
    assert result.decision.winner == "6" and result.decision.counts == {"5": 2, "6": 3}
    assert result.decision.chosen == 1 and len(result.chains) == 5
    assert sorted(r.seed for r in backend.requests) == [0, 1, 2, 3, 4]


def test_a_tie_left_when_the_tie_breaks_are_spent_goes_to_the_lowest_numbered_sample() -> None:
    backend = answers_by_seed(["5", "6", "6", "5", "7", "8"])
    result = SelfConsistency(backend, DIRECT, k=4, early_stop="off", tie_breaks=2).run("q?")
    assert len(result.chains) == 6  # both tie breaks drawn, neither broke it
    assert result.decision.winner == "5" and result.decision.chosen == 0
    backend = answers_by_seed(["6", "5", "5", "6"])
    result = SelfConsistency(backend, DIRECT, k=4, early_stop="off", tie_breaks=0).run("q?")
    assert result.decision.winner == "6" and len(result.chains) == 4


def test_unreadable_answers_do_not_vote() -> None:
    backend = answers_by_seed(["I am not sure.", "7", "I cannot tell."])
    result = SelfConsistency(backend, DIRECT, k=3, early_stop="off").run("q?")
    assert list(result.decision.reads) == [None, "7", None]
    assert result.decision.winner == "7" and result.decision.voters == 1


def test_no_readable_answer_means_no_winner_and_an_error() -> None:
    backend = answers_by_seed(["I am not sure.", "cannot say really", "hard to tell"])
    result = SelfConsistency(backend, DIRECT, k=3, early_stop="off").run("q?")
    assert result.decision.chosen is None and result.answer is None and not result.ok
    assert result.error is not None and result.error.kind == "answer_failed"


def test_when_every_sample_fails_the_chain_error_is_reported() -> None:
    backend = ScriptedBackend([])  # every call is rejected: each chain fails
    result = SelfConsistency(backend, DIRECT, k=2, early_stop="off").run("q?")
    assert result.decision.chosen is None
    assert result.error is not None and result.error.kind == "backend_error"


def test_decisive_early_stop_on_a_one_at_a_time_backend_skips_the_rest() -> None:
    backend = sequential(["3", "3", "3", "4", "4"])
    result = SelfConsistency(backend, DIRECT, k=5, early_stop="decisive").run("q?")
    assert result.decision.stopped_early
    assert len(backend.requests) == 3  # samples 4 and 5 never ran
    assert result.decision.winner == "3"
    assert result.decision.unfinished == 2


def test_agree_stops_when_the_first_answers_agree() -> None:
    backend = sequential(["3", "3", "4", "4", "4"])
    result = SelfConsistency(backend, DIRECT, k=5, early_stop="agree", agree_n=2).run("q?")
    assert result.decision.stopped_early and len(backend.requests) == 2
    assert result.decision.winner == "3"


def test_early_stop_off_runs_every_sample() -> None:
    backend = sequential(["3"] * 5)
    result = SelfConsistency(backend, DIRECT, k=5, early_stop="off").run("q?")
    assert len(backend.requests) == 5 and not result.decision.stopped_early


def test_samples_run_concurrently_on_a_backend_that_can() -> None:
    backend = answers_by_seed(["one two three four five 1"] * 3, delay=0.01)
    events = list(SelfConsistency(backend, DIRECT, k=3, early_stop="off").stream("q?"))
    first_done = next(i for i, e in enumerate(events) if isinstance(e, ChainRead))
    started = {e.chain for e in events[:first_done] if isinstance(e, InChain)}
    assert started == {0, 1, 2}  # all three were generating before any finished


def test_one_at_a_time_backend_runs_samples_in_order() -> None:
    backend = sequential(["1", "2", "3"])
    events = list(SelfConsistency(backend, DIRECT, k=3, early_stop="off").stream("q?"))
    order = [e.chain for e in events if isinstance(e, InChain)]
    assert order == sorted(order)


def test_event_stream_shape() -> None:
    backend = answers_by_seed(["1", "1", "2"])
    events = list(SelfConsistency(backend, DIRECT, k=3, early_stop="off").stream("q?"))
    # The protocol of every run: started, each chain's events, reads, the decision, and one
    # terminal event, as a chain ends.
    assert isinstance(events[0], RunStarted) and events[0].chains == 3
    assert isinstance(events[-2], Decided) and isinstance(events[-1], ChainCompleted)
    assert sum(isinstance(e, Decided) for e in events) == 1
    assert sum(isinstance(e, (ChainCompleted, ChainFailed)) for e in events) == 1
    done = [e for e in events if isinstance(e, ChainRead)]
    assert sorted(e.chain for e in done) == [0, 1, 2]
    for sample in range(3):
        mine = [e.event for e in events if isinstance(e, InChain) and e.chain == sample]
        assert isinstance(mine[0], ChainStarted) and isinstance(mine[-1], ChainCompleted)


def test_reasoning_chains_vote_too() -> None:
    def reply(request: GenerationRequest) -> str:
        if request.purpose == "answer":
            return f"There are **{3 if request.seed != 1 else 2}** letters r."
        return step_json("Count", "s-t-r-a-w-b-e-r-r-y has r at 3, 8, 9.", "final_answer")

    backend = ScriptedBackend([reply], repeat_last=True)
    settings = ChainSettings(min_steps=1, **FAST)
    result = SelfConsistency(backend, settings, k=3, early_stop="off").run("r in strawberry?")
    assert list(result.decision.reads) == ["3", "2", "3"]
    assert result.decision.winner == "3"
    assert all(len(s.steps) == 1 for s in result.chains)


def test_expect_number_makes_words_and_digits_vote_together() -> None:
    backend = answers_by_seed(["There are none.", "0", "1"])
    strategy = SelfConsistency(backend, DIRECT, k=3, early_stop="off", expect="number")
    assert strategy.run("z in banana?").decision.counts == {"0": 2, "1": 1}


async def test_cancel_from_outside_stops_every_sample() -> None:
    backend = answers_by_seed(["word " * 200 + "1"] * 3, delay=0.01)
    cancel = CancelToken()
    strategy = SelfConsistency(backend, DIRECT, k=3, early_stop="off")
    task = asyncio.create_task(strategy.arun("q?", cancel=cancel))
    await asyncio.sleep(0.05)
    cancel.cancel()
    result = await task
    assert result.decision.chosen is None
    assert all(s.error is not None and s.error.kind == "cancelled" for s in result.chains)
    assert result.decision.unfinished == 3


@pytest.mark.timeout(30)
def test_a_failure_inside_the_strategy_is_raised_not_hung(monkeypatch) -> None:
    # Before the fix, an exception in a sample task left the consumer waiting forever.
    def broken(self, result):
        raise RuntimeError("normaliser exploded")

    monkeypatch.setattr(SelfConsistency, "answer_key", broken)
    backend = answers_by_seed(["1", "1"])
    with pytest.raises(RuntimeError, match="normaliser exploded"):
        SelfConsistency(backend, DIRECT, k=2, early_stop="off").run("q?")


def test_k_and_early_stop_are_validated() -> None:
    with pytest.raises(ValueError):
        SelfConsistency(ScriptedBackend(), k=0)
    with pytest.raises(ValueError):
        SelfConsistency(ScriptedBackend(), early_stop="sometimes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="agree_n must be at least 2"):
        SelfConsistency(ScriptedBackend(), early_stop="agree", agree_n=1)


@pytest.mark.parametrize(
    ("replies", "early_stop", "agree_n", "calls"),
    [
        (["3", "3", "4", "4", "4"], "agree", 2, 2),  # the first wave agrees: done
        (["3", "4", "4", "4", "3"], "agree", 2, 5),  # it does not: the rest run too
        (["3", "3", "3", "4", "4"], "decisive", 3, 3),  # 3 of 5 agreeing decides alone
        (["3", "3", "4", "4", "4"], "decisive", 3, 5),
        (["3", "3", "3", "3", "3"], "off", 3, 5),  # no early stop: one wave of all K
    ],
)
def test_concurrent_samples_start_in_waves_when_stopping_early(
    replies, early_stop, agree_n, calls
) -> None:
    backend = answers_by_seed(replies, delay=0.005)
    sc = SelfConsistency(backend, DIRECT, k=5, early_stop=early_stop, agree_n=agree_n)
    result = sc.run("q?")
    assert len(backend.requests) == calls
    assert result.decision.winner == ("3" if calls < 5 or replies.count("3") > 2 else "4")
