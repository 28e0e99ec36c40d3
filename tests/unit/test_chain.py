"""The chain loop on the scripted backend: what users see and what the model is sent."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest

from thinkchain import Chain, ChainSettings
from thinkchain.chain.backend import (
    BackendError,
    ContextOverflow,
    RequestRejected,
    TransportError,
)
from thinkchain.chain.cancel import CancelToken
from thinkchain.chain.events import (
    AnswerDelta,
    AnswerDone,
    AnswerStarted,
    ChainCompleted,
    ChainFailed,
    ChainStarted,
    Retry,
    StepDelta,
    StepDiscarded,
    StepDone,
    StepStarted,
    Usage,
    is_terminal,
)
from thinkchain.chain.prompts import prompt
from thinkchain.chain.steps import STEP_SCHEMA
from thinkchain.models.backends.scripted import Fault, Reply, ScriptedBackend, step_json

# These tests are about JSON steps, one per call: the iterative shape (the seed's).
FAST = {"retry_base_delay": 0.0, "retry_max_delay": 0.0, "mode": "iterative"}
ITERATIVE = ChainSettings(mode="iterative")


def steps(n: int, final_at: int | None = None) -> list[str]:
    final_at = n if final_at is None else final_at
    return [
        step_json(
            f"Title {i}",
            f"Content of step {i}, which is new.",
            "final_answer" if i == final_at else "continue",
        )
        for i in range(1, n + 1)
    ]


def run(backend: ScriptedBackend, question: str = "What is 2+2?", **settings):
    chain = Chain(backend, ChainSettings(**{**FAST, **settings}))
    events = list(chain.stream(question))
    assert sum(1 for e in events if is_terminal(e)) == 1
    assert is_terminal(events[-1])
    return events, events[-1].result


def of_type(events, cls):
    return [e for e in events if isinstance(e, cls)]


def test_happy_path_events_in_order_with_steps_answer_and_times():
    backend = ScriptedBackend([*steps(3), "The answer is **4**."])
    events, result = run(backend)
    kinds = [type(e) for e in events]
    assert kinds[0] is ChainStarted
    # Each step starts, streams its title then content, and finishes, in order.
    assert [e.index for e in of_type(events, StepStarted)] == [1, 2, 3]
    assert [e.step.title for e in of_type(events, StepDone)] == ["Title 1", "Title 2", "Title 3"]
    first_done = kinds.index(StepDone)
    deltas = [e for e in events[:first_done] if isinstance(e, StepDelta)]
    assert "".join(d.text for d in deltas if d.field == "title") == "Title 1"
    assert "".join(d.text for d in deltas if d.field == "content").strip() == (
        "Content of step 1, which is new."
    )
    assert kinds.index(AnswerStarted) > kinds.index(StepDone) and AnswerDelta in kinds
    assert isinstance(events[-1], ChainCompleted)
    assert result.answer.text == "The answer is **4**."
    assert "".join(e.text for e in of_type(events, AnswerDelta)) == "The answer is **4**."
    assert result.ok and result.error is None
    assert all(s.seconds > 0 and s.ttft is not None for s in result.steps)
    assert result.seconds >= sum(s.seconds for s in result.steps)
    # Usage: every call counted; the chain sums them.
    assert (
        result.usage.completion_tokens
        == sum(s.usage.completion_tokens for s in result.steps)
        + result.answer.usage.completion_tokens
    )
    json.dumps(result.to_dict())  # the whole result is JSON-serialisable


def test_requests_follow_the_seed_shape_schema_for_steps_plain_text_for_answer():
    backend = ScriptedBackend([*steps(3), "4"])
    run(backend, "What is 2+2?")
    first = backend.requests[0]
    assert [m["role"] for m in first.messages] == ["system", "user"]
    assert first.messages[0]["content"] == prompt("en", "step_system")
    assert first.messages[1]["content"] == "What is 2+2?"
    assert first.schema == STEP_SCHEMA and first.max_tokens == 1000
    assert first.temperature == 0.2
    # Each accepted step is appended as an assistant message, exactly as the model wrote it.
    third = backend.requests[2]
    assert [m["role"] for m in third.messages] == ["system", "user", "assistant", "assistant"]
    assert third.messages[2]["content"] == steps(3)[0]
    answer = backend.requests[3]
    assert answer.purpose == "answer" and answer.schema is None
    assert answer.messages[-1] == {"role": "user", "content": prompt("en", "final_answer")}


def test_chinese_question_uses_chinese_prompts():
    backend = ScriptedBackend([*steps(3), "3 个"])
    _, result = run(backend, "strawberry中有多少个字母r？")
    assert result.lang == "zh"
    assert backend.requests[0].messages[0]["content"] == prompt("zh", "step_system")
    assert backend.requests[-1].messages[-1]["content"] == prompt("zh", "final_answer")


def test_lang_setting_overrides_detection():
    backend = ScriptedBackend([*steps(3), "4"])
    _, result = run(backend, "What is 2+2?", lang="zh")
    assert result.lang == "zh"


@pytest.mark.parametrize(
    ("bad", "error_fragment"),
    [
        ('{"title": "T", "content": "cut in the midd', "not closed"),
        ("I think the answer is 4.", "no '{'"),
        ('{"title": "T", "content": "C"}', '"next_action" is missing'),
        ('{"title": "T", "content": "C", "next_action": "maybe"}', "not 'maybe'"),
        ("", "empty"),
        ('{"title": "", "content": "C", "next_action": "continue"}', '"title" is empty'),
        ('{"heading": "T", "content": "C", "next_action": "continue"}', '"title" is missing'),
        ('{"title": "T", "content": {"a": 1}, "next_action": "continue"}', "must be a string"),
        ('["title", "content"]', "no '{'"),
    ],
)
def test_invalid_step_is_fed_back_with_the_exact_error(bad, error_fragment):
    backend = ScriptedBackend([bad, *steps(3), "4"])
    events, result = run(backend)
    retries = of_type(events, Retry)
    assert len(retries) == 1 and retries[0].target == "step" and retries[0].index == 1
    assert error_fragment in retries[0].reason
    retry_request = backend.requests[1]
    # The rejected reply, then our correction, are appended to the same conversation.
    assert retry_request.messages[:2] == backend.requests[0].messages
    assert retry_request.messages[2]["role"] == "assistant"
    assert retry_request.messages[2]["content"] == (bad.strip() or "(empty)")
    assert retry_request.messages[3] == {
        "role": "user",
        "content": prompt("en", "invalid_step").format(error=retries[0].reason),
    }
    assert result.ok and result.steps[0].attempts == 2
    # The rejected attempt is not part of the conversation afterwards.
    assert len(backend.requests[2].messages) == 3


@pytest.mark.parametrize(
    "text",
    [
        '```json\n{"title": "T", "content": "C", "next_action": "continue"}\n```',
        'Here is my step:\n{"title": "T", "content": "C", "next_action": "continue"}\nDone.',
        '{"title": "T", "content": "C", "next_action": "continue",}',
        '{"title": "T", "content": "line one\nline two", "next_action": "continue"}',
        '{"Title": "T", "content": "C", "next_action": "Continue", "extra": 1}',
    ],
)
def test_lenient_parsing_accepts_recoverable_output_without_a_retry(text):
    backend = ScriptedBackend([text, *steps(3)[1:], "4"])
    events, result = run(backend)
    assert not of_type(events, Retry)
    assert result.steps[0].title == "T"
    # Repaired steps go back into the conversation as clean JSON.
    sent_back = json.loads(backend.requests[1].messages[2]["content"])
    assert sent_back["next_action"] == "continue"


def test_step_failing_every_attempt_ends_the_chain_keeping_earlier_steps():
    backend = ScriptedBackend([steps(3)[0], "nope", "still nope", "never"])
    events, result = run(backend)
    assert isinstance(events[-1], ChainFailed)
    assert events[-1].error.kind == "step_failed"
    assert "step 2" in events[-1].error.message and "3 attempt" in events[-1].error.message
    assert [s.title for s in result.steps] == ["Title 1"]
    assert len(backend.requests) == 4  # one good step, three attempts at step 2
    assert result.wasted_usage.completion_tokens > 0


def test_truncated_step_on_the_last_attempt_is_repaired_not_lost():
    cut = '{"title": "Long step", "content": "Part of the reasoning'
    backend = ScriptedBackend([cut, cut, Reply(cut, finish_reason="length"), *steps(3)[1:], "4"])
    _, result = run(backend)
    assert result.ok
    assert result.steps[0].title == "Long step"
    assert result.steps[0].content == "Part of the reasoning"
    assert "repaired" in result.steps[0].notes[0]


VOCABULARY = [
    "apples",
    "rivers",
    "stones",
    "clouds",
    "maple",
    "copper",
    "violin",
    "harbour",
    "lantern",
    "meadow",
    "orbit",
    "pepper",
    "quartz",
    "saddle",
    "timber",
    "umbrella",
    "velvet",
    "walnut",
    "yonder",
    "zephyr",
    "anchor",
    "biscuit",
    "candle",
    "dune",
]


def distinct_reasoning(i: int) -> str:
    """A step unlike every other one, in words and numbers (so no repeat check fires)."""
    words = [VOCABULARY[(i * 7 + k * 5) % len(VOCABULARY)] for k in range(6)]
    return f"{' '.join(words)} gives {i * 13 + 1}."


def test_max_steps_is_exact_and_the_answer_is_still_requested():
    backend = ScriptedBackend(
        [step_json(f"T{i}", distinct_reasoning(i)) for i in range(30)] + ["final"]
    )
    backend.script[5] = "final"  # the 6th call is the answer
    _, result = run(backend, max_steps=5, min_steps=0)
    assert len(result.steps) == 5
    assert [r.purpose for r in backend.requests] == ["step"] * 5 + ["answer"]
    assert result.hit_step_limit and result.answer.text == "final"


def test_default_max_steps_is_25_not_26():
    script = [step_json(f"T{i}", distinct_reasoning(i)) for i in range(25)]
    backend = ScriptedBackend([*script, "done"])
    _, result = run(backend)
    assert len(result.steps) == 25 and result.ok
    assert sum(1 for r in backend.requests if r.purpose == "step") == 25


def test_early_final_answer_is_answered_with_a_request_to_keep_checking():
    early = step_json("Quick answer", "It is 4.", "final_answer")
    backend = ScriptedBackend([early, *steps(3)[1:], "4"])
    _, result = run(backend, min_steps=3)
    assert result.steps[0].next_action == "continue"
    assert "kept going" in result.steps[0].notes[0]
    second = backend.requests[1]
    assert second.messages[-2] == {"role": "assistant", "content": early}
    assert second.messages[-1] == {
        "role": "user",
        "content": prompt("en", "keep_going").format(remaining=2),
    }
    assert len(result.steps) == 3


def test_min_steps_zero_lets_the_model_answer_at_step_one():
    backend = ScriptedBackend([step_json("Done", "4", "final_answer"), "4"])
    _, result = run(backend, min_steps=0)
    assert len(result.steps) == 1 and result.ok


def test_final_answer_in_json_is_unwrapped_to_plain_text():
    backend = ScriptedBackend(
        [*steps(3), step_json("Final answer", "There are 3.", "final_answer")]
    )
    _, result = run(backend)
    assert result.answer.text == "There are 3."


def test_empty_final_answer_is_retried_then_fails_clearly():
    backend = ScriptedBackend([*steps(3), "  ", "", "\n"])
    events, result = run(backend)
    assert isinstance(events[-1], ChainFailed)
    assert events[-1].error.kind == "answer_failed" and "empty" in events[-1].error.message
    assert len(result.steps) == 3
    assert [e.target for e in of_type(events, Retry)] == ["answer", "answer"]


def test_transport_errors_are_retried_and_honour_retry_after(monkeypatch):
    slept: list[float] = []
    real_sleep = asyncio.sleep

    async def fake_sleep(seconds, *a, **k):
        slept.append(seconds)
        await real_sleep(0)

    monkeypatch.setattr("thinkchain.chain.loop.asyncio.sleep", fake_sleep)
    backend = ScriptedBackend(
        [
            Fault(TransportError("HTTP 429: slow down", server="s1", retry_after=7.0)),
            Fault(TransportError("cut", server="s1"), after_text='{"title": "Par'),
            *steps(3),
            "4",
        ]
    )
    chain = Chain(
        backend, ChainSettings(mode="iterative", retry_base_delay=0.5, retry_max_delay=20)
    )
    events = list(chain.stream("q?"))
    retries = of_type(events, Retry)
    assert len(retries) == 2
    assert retries[0].reason == "s1: HTTP 429: slow down; retrying in 7.0 s"
    assert slept[0] == 7.0  # Retry-After wins
    assert 0.5 <= slept[1] <= 1.5  # exponential backoff with jitter: 0.5 * 2**1 * [0.75, 1.25]
    assert events[-1].result.ok


def test_transport_retries_are_bounded():
    backend = ScriptedBackend([Fault(TransportError("down", server="s"))] * 10)
    events, _result = run(backend, max_retries=2)
    assert isinstance(events[-1], ChainFailed)
    assert events[-1].error.kind == "backend_error"
    assert events[-1].error.server == "s" and "gave up after 3 tries" in events[-1].error.message
    assert len(backend.requests) == 3


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (RequestRejected("HTTP 401: bad key", server="s"), "backend_error"),
        (ContextOverflow("HTTP 400: maximum context length", server="s"), "context_overflow"),
        (BackendError("boom", server="s"), "backend_error"),
    ],
)
def test_non_retryable_errors_end_the_chain_at_once(error, kind):
    backend = ScriptedBackend([steps(3)[0], Fault(error)])
    events, result = run(backend)
    assert events[-1].error.kind == kind
    assert len(backend.requests) == 2 and len(result.steps) == 1


def test_question_too_long_for_the_context_fails_before_any_generation():
    backend = ScriptedBackend(steps(3), context_tokens=1200)
    events, _result = run(backend, "word " * 2000)
    assert isinstance(events[-1], ChainFailed)
    assert events[-1].error.kind == "context_overflow"
    assert "context of 1,200 tokens" in events[-1].error.message
    assert backend.requests == []


@pytest.mark.parametrize("question", ["", "   \n\t ", "\x00\x01\x02"])
def test_empty_question_is_refused_before_generation(question):
    backend = ScriptedBackend(steps(3))
    events, _ = run(backend, question)
    assert events[-1].error.kind == "invalid_input" and "empty" in events[-1].error.message
    assert backend.requests == []


def test_oversized_question_is_refused():
    backend = ScriptedBackend(steps(3))
    events, _ = run(backend, "x" * 50, max_question_chars=10)
    assert events[-1].error.kind == "invalid_input" and "limit is 10" in events[-1].error.message


def test_control_characters_are_removed_from_the_question():
    backend = ScriptedBackend([*steps(3), "4"])
    _, result = run(backend, "What\x07 is\x1b 2+2?\x00")
    assert result.question == "What is 2+2?"
    assert backend.requests[0].messages[-1]["content"] == "What is 2+2?"


def test_token_budget_ends_the_chain_and_keeps_finished_steps():
    long_step = step_json("T", " ".join(f"w{i}" for i in range(40)))
    backend = ScriptedBackend([steps(3)[0], long_step, *steps(3)[2:], "4"])
    first_cost = len(backend.script[0].split())  # the scripted backend streams word by word
    events, result = run(backend, max_total_tokens=first_cost + 10)
    assert isinstance(events[-1], ChainFailed)
    assert events[-1].error.kind == "token_budget"
    assert [s.title for s in result.steps] == ["Title 1"]


def test_time_budget_ends_the_chain_and_keeps_finished_steps():
    backend = ScriptedBackend([steps(3)[0], Reply(steps(3)[1], delay=0.2), *steps(3)[2:], "4"])
    events, result = run(backend, max_seconds=0.5)
    assert events[-1].error.kind == "time_budget"
    assert len(result.steps) == 1
    assert result.seconds < 3


def test_cancel_from_another_thread_stops_at_once_and_keeps_steps():
    backend = ScriptedBackend([steps(3)[0], Reply(steps(3)[1], delay=0.5), "4"])
    token = CancelToken()
    chain = Chain(backend, ITERATIVE)
    events = []
    started = time.perf_counter()
    for event in chain.stream("q?", cancel=token):
        events.append(event)
        if isinstance(event, StepDone):
            threading.Timer(0.2, token.cancel).start()
    assert events[-1].error.kind == "cancelled"
    assert len(events[-1].result.steps) == 1
    assert time.perf_counter() - started < 2  # not the ~10 s the slow step would take


def test_closing_the_stream_early_cancels_the_generation():
    backend = ScriptedBackend([Reply(steps(3)[0], delay=0.3), *steps(3)[1:], "4"])
    chain = Chain(backend, ITERATIVE)
    started = time.perf_counter()
    stream = chain.stream("q?")
    for event in stream:
        if isinstance(event, StepStarted):
            break
    stream.close()
    assert time.perf_counter() - started < 2
    assert len(backend.requests) == 1


def test_degenerate_whitespace_is_cut_and_retried_hotter():
    spaces = '{"title": "T", "content": "' + " " * 400 + "x" * 2000
    backend = ScriptedBackend([Reply(spaces, chunk_size=8), *steps(3), "4"])
    events, result = run(backend)
    retries = of_type(events, Retry)
    assert "whitespace" in retries[0].reason
    assert result.degenerate_outputs == 1 and result.ok
    assert backend.requests[1].temperature == pytest.approx(0.5)
    # Cut early: far fewer characters streamed than the 2,400 the model would have sent.
    streamed = sum(
        len(e.text) for e in events[: events.index(retries[0])] if isinstance(e, StepDelta)
    )
    assert streamed < 600


def test_looping_output_is_cut():
    loop = '{"title": "T", "content": "' + "the answer is 4, " * 200
    backend = ScriptedBackend([Reply(loop, chunk_size=16), *steps(3), "4"])
    events, result = run(backend)
    assert "loop" in of_type(events, Retry)[0].reason
    assert result.degenerate_outputs == 1
    [cut] = result.cuts
    assert cut.index == 1 and "the answer is 4, the answer is 4" in cut.text


def test_a_step_repeating_an_earlier_one_is_cut_and_the_answer_still_comes():
    text = "Let me compute two plus two carefully: two plus two equals four, so it is four."
    same = step_json("Again", text)
    backend = ScriptedBackend([step_json("First", text), same, "4"])
    events, result = run(backend, min_steps=0)
    assert of_type(events, StepDiscarded)[0].index == 2
    assert len(result.steps) == 1 and result.repeated_steps == 1
    assert [(c.index, c.text) for c in result.cuts] == [(2, text)]
    assert result.answer.text == "4"


def test_events_are_async_too_and_chains_run_concurrently():
    async def main():
        backends = [
            ScriptedBackend([Reply(s, delay=0.01) for s in steps(3)] + ["4"]) for _ in range(8)
        ]
        chains = [Chain(b, ITERATIVE) for b in backends]
        started = time.perf_counter()
        results = await asyncio.gather(*(c.arun("q?") for c in chains))
        return results, time.perf_counter() - started

    results, _elapsed = asyncio.run(main())
    assert all(r.ok for r in results)


def test_async_stream_yields_typed_events():
    async def main():
        chain = Chain(ScriptedBackend([*steps(3), "4"]), ITERATIVE)
        return [type(e).__name__ async for e in chain.astream("q?")]

    names = asyncio.run(main())
    assert names[0] == "ChainStarted" and names[-1] == "ChainCompleted"
    assert "AnswerDone" in names


def test_backend_bug_becomes_a_failure_event_not_an_exception():
    def explode(request):
        raise ZeroDivisionError("oops")

    backend = ScriptedBackend([explode])
    events, _ = run(backend)
    assert (
        events[-1].error.kind == "backend_error" and "ZeroDivisionError" in events[-1].error.message
    )


def test_settings_are_validated():
    with pytest.raises(ValueError):
        ChainSettings(max_steps=0)
    with pytest.raises(ValueError):
        ChainSettings(min_steps=5, max_steps=3)
    with pytest.raises(ValueError):
        ChainSettings(lang="fr")
    with pytest.raises(ValueError):
        ChainSettings(max_steps=10**6)


def test_usage_adds_up():
    assert Usage(1, 2, 3) + Usage(10, 20, 30) == Usage(11, 22, 33)
    assert Usage(5, 1, 2).evaluated_prompt_tokens == 3


def test_answer_done_precedes_completion():
    backend = ScriptedBackend([*steps(3), "4"])
    events, _ = run(backend)
    assert isinstance(events[-2], AnswerDone)


def test_lone_surrogates_in_the_question_become_replacement_characters():
    backend = ScriptedBackend([*steps(3), "4"])
    _, result = run(backend, "What is 2+2? \ud800")
    assert result.question == "What is 2+2? \ufffd"
