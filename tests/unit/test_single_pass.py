"""The single-pass shape: one generation, split into live titled steps while it streams."""

from __future__ import annotations

import pytest

from thinkchain import Chain, ChainSettings
from thinkchain.chain.backend import TransportError
from thinkchain.chain.events import (
    AnswerDelta,
    AnswerDone,
    AnswerStarted,
    ChainCompleted,
    Retry,
    StepDelta,
    StepDiscarded,
    StepDone,
    StepStarted,
)
from thinkchain.chain.prompts import prompt
from thinkchain.chain.splitter import StepSplitter
from thinkchain.models.backends.scripted import Fault, Reply, ScriptedBackend

CHAIN = """### Step 1: Restate the question
We count the letter r in strawberry.

### Step 2: Spell it out
s, t, r (1), a, w, b, e, r (2), r (3), y.

### Step 3: Check
Counting backwards: y, r, r, e, b, w, a, r, t, s gives 3 again.

### Answer
**3**: positions 3, 8 and 9.
"""


def run(script, **settings):
    backend = ScriptedBackend(script)
    chain = Chain(backend, ChainSettings(mode="single-pass", retry_base_delay=0, **settings))
    events = list(chain.stream("How many r are in strawberry?"))
    return backend, events, events[-1].result


def merged(pieces):
    out = []
    for p in pieces:
        if out and p.kind in ("content", "answer") and out[-1][0] == p.kind:
            out[-1] = (p.kind, out[-1][1] + p.text)
        else:
            out.append((p.kind, p.number if p.kind == "step" else p.text))
    return out


@pytest.mark.parametrize("chunk", [1, 2, 5, 13, 10_000])
def test_splitter_gives_the_same_steps_whatever_the_chunking(chunk):
    splitter = StepSplitter()
    pieces = []
    for i in range(0, len(CHAIN), chunk):
        pieces += splitter.feed(CHAIN[i : i + chunk])
    pieces += splitter.finish()
    assert merged(pieces) == [
        ("step", 1),
        ("title", "Restate the question"),
        ("content", "We count the letter r in strawberry.\n\n"),
        ("step", 2),
        ("title", "Spell it out"),
        ("content", "s, t, r (1), a, w, b, e, r (2), r (3), y.\n\n"),
        ("step", 3),
        ("title", "Check"),
        ("content", "Counting backwards: y, r, r, e, b, w, a, r, t, s gives 3 again.\n\n"),
        ("answer_start", ""),
        ("answer", "**3**: positions 3, 8 and 9.\n"),
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "**Step 1: Add**\n2+2\n**Answer:** 4",
            [
                ("step", 1),
                ("title", "Add"),
                ("content", "2+2\n"),
                ("answer_start", ""),
                ("answer", " 4"),
            ],
        ),
        (
            "步骤 1：相加\n2+2=4\n答案：4",
            [
                ("step", 1),
                ("title", "相加"),
                ("content", "2+2=4\n"),
                ("answer_start", ""),
                ("answer", "4"),
            ],
        ),
        (
            "Step 1.\nStepping stones are 4.\nAnswering: no.\n",
            [("step", 1), ("content", "Stepping stones are 4.\nAnswering: no.\n")],
        ),
        (
            "### Step 1: Count\ns, t, r.\n### Step 2: Answer\nThere is **1** r.\n",
            [
                ("step", 1),
                ("title", "Count"),
                ("content", "s, t, r.\n"),
                ("answer_start", ""),
                ("answer", "There is **1** r.\n"),
            ],
        ),
        (
            "### Step 1: Add\n2+2\n**Step 2: Final answer: 4**\n",
            [
                ("step", 1),
                ("title", "Add"),
                ("content", "2+2\n"),
                ("answer_start", ""),
                ("answer", "4"),
            ],
        ),
        (
            "### Step 1: Answering the question needs a count\nx\n",
            [("step", 1), ("title", "Answering the question needs a count"), ("content", "x\n")],
        ),
        (
            "Some preamble\n## Step 2 - Next\nx",
            [("content", "Some preamble\n"), ("step", 2), ("title", "Next"), ("content", "x")],
        ),
    ],
)
def test_splitter_reads_heading_variants(text, expected):
    for chunk in (1, 1000):
        splitter = StepSplitter()
        pieces = []
        for i in range(0, len(text), chunk):
            pieces += splitter.feed(text[i : i + chunk])
        pieces += splitter.finish()
        got = merged(pieces)
        # Leading whitespace of streamed answer text depends on the chunking; compare stripped.
        assert [(k, v.strip() if isinstance(v, str) else v) for k, v in got] == [
            (k, v.strip() if isinstance(v, str) else v) for k, v in expected
        ]


def test_one_generation_becomes_live_steps_and_the_answer():
    backend, events, result = run([Reply(CHAIN, chunk_size=3)])
    assert isinstance(events[-1], ChainCompleted)
    assert [s.title for s in result.steps] == ["Restate the question", "Spell it out", "Check"]
    assert result.answer.text == "**3**: positions 3, 8 and 9."
    assert len(backend.requests) == 1 and backend.requests[0].purpose == "chain"
    assert backend.requests[0].messages[0]["content"] == prompt("en", "single_pass_system")
    # Steps stream: started, title, content deltas, done -- in order, before the answer.
    kinds = [type(e) for e in events]
    assert kinds.index(StepStarted) < kinds.index(StepDelta) < kinds.index(StepDone)
    assert kinds.index(AnswerStarted) > max(i for i, k in enumerate(kinds) if k is StepDone)
    content = "".join(
        e.text for e in events if isinstance(e, StepDelta) and e.index == 2 and e.field == "content"
    )
    assert content.strip() == "s, t, r (1), a, w, b, e, r (2), r (3), y."
    assert "".join(e.text for e in events if isinstance(e, AnswerDelta)).strip() == (
        result.answer.text
    )
    # Every generated token is counted once: steps + answer = the whole reply.
    total = sum(s.usage.completion_tokens for s in result.steps)
    assert total + result.answer.usage.completion_tokens == result.usage.completion_tokens
    assert all(s.seconds >= 0 for s in result.steps)


def test_no_answer_heading_asks_for_the_answer_separately():
    no_answer = CHAIN.split("### Answer")[0]
    backend, events, result = run([no_answer, "It is 3."])
    assert result.answer.text == "It is 3."
    assert [r.purpose for r in backend.requests] == ["chain", "answer"]
    follow = backend.requests[1].messages
    assert follow[-2]["role"] == "assistant" and follow[-2]["content"].startswith("### Step 1")
    assert follow[-1]["content"] == prompt("en", "final_answer")
    assert sum(isinstance(e, AnswerStarted) for e in events) == 1


def test_step_limit_cuts_the_stream_and_the_answer_is_requested():
    backend, _, result = run([CHAIN, "3"], max_steps=2, min_steps=0)
    assert len(result.steps) == 2 and result.hit_step_limit
    assert result.answer.text == "3"
    assert "### Step 3" not in backend.requests[1].messages[-2]["content"]


def test_an_answer_before_min_steps_is_held_back_and_checking_requested():
    early = "### Step 1: Guess\nIt is 3.\n### Answer\n3\n"
    rest = "### Step 2: Check\nSpelled out: 3.\n### Step 3: Again\nStill 3.\n### Answer\n**3**\n"
    backend, events, result = run([early, rest], min_steps=3)
    assert [s.title for s in result.steps] == ["Guess", "Check", "Again"]
    assert result.answer.text == "**3**"
    second = backend.requests[1].messages
    assert second[-2] == {"role": "assistant", "content": "### Step 1: Guess\nIt is 3."}
    assert second[-1]["content"] == prompt("en", "keep_checking_chain").format(remaining=2, next=2)
    assert sum(isinstance(e, AnswerStarted) for e in events) == 1


def test_transport_failure_mid_stream_keeps_finished_steps_and_continues():
    # Cut inside step 3: steps 1 and 2 are finished, step 3 is not (its end is unknown).
    cut_after = CHAIN.split("### Step 3")[0] + "### Step 3: Check\nCounting back"
    rest = "### Step 3: Check\nAgain 3.\n### Answer\n3\n"
    backend, events, result = run(
        [Fault(TransportError("cut", server="s"), after_text=cut_after), rest]
    )
    assert [s.title for s in result.steps] == ["Restate the question", "Spell it out", "Check"]
    retry = next(e for e in events if isinstance(e, Retry))
    assert retry.target == "step" and retry.index == 3
    continued = backend.requests[1].messages
    assert continued[-2]["content"].endswith("r (3), y.")
    assert continued[-1]["content"] == prompt("en", "continue_chain").format(next=3)
    assert result.answer.text == "3"


REPEATED = "### Step 2: A\nThe same long sentence about the problem, repeated word for word.\n"


def test_a_repeated_step_is_dropped_and_the_reasoning_goes_on_after_the_finished_steps():
    first = REPEATED.replace("Step 2", "Step 1")
    backend, events, result = run([first + REPEATED + "### Answer\n1\n", REST])
    assert result.repeated_steps == 1 and result.ok
    assert [s.title for s in result.steps] == ["A", "Spell it out", "Check"]
    # What was cut is kept to be read afterwards, with the step it was to be and why.
    [cut] = result.cuts
    assert (cut.index, cut.repeat, cut.reason) == (2, True, "it repeats an earlier step")
    assert cut.text.startswith("The same long sentence")
    retry = next(e for e in events if isinstance(e, Retry))
    assert retry.reason == "step 2: it repeats an earlier step"
    assert backend.requests[1].messages[-2] == {"role": "assistant", "content": first.rstrip()}


def test_repeats_that_keep_coming_end_the_reasoning():
    first = REPEATED.replace("Step 2", "Step 1")
    backend, events, result = run([first + REPEATED, REPEATED, REPEATED, "1"], min_steps=1)
    assert [r.purpose for r in backend.requests] == ["chain", "chain", "chain", "answer"]
    assert len(result.steps) == 1 and result.repeated_steps == 3
    cut = [e for e in events if isinstance(e, StepDiscarded)]
    assert len(cut) == 1 and cut[0].reason.endswith("reasoning stops here")
    assert result.ok and isinstance(events[-2], AnswerDone)


def test_text_without_any_heading_is_one_untitled_step():
    _, _, result = run(["I think it is 3 because of r, r, r.", "3"], min_steps=1)
    assert len(result.steps) == 1 and result.steps[0].title == "Step 1"
    assert result.answer.text == "3"


def test_chinese_single_pass_uses_chinese_prompts():
    backend = ScriptedBackend(["### 步骤 1：复述\n数 r。\n### 答案\n3\n"])
    result = Chain(backend, ChainSettings(mode="single-pass", min_steps=1)).run(
        "strawberry中有多少个字母r？"
    )
    assert backend.requests[0].messages[0]["content"] == prompt("zh", "single_pass_system")
    assert result.steps[0].title == "复述" and result.answer.text == "3"


def test_the_calls_prompt_tokens_are_counted_once_with_the_first_step():
    from thinkchain.chain.events import Usage

    _, _, result = run([Reply(CHAIN, usage=Usage(prompt_tokens=300, completion_tokens=90))])
    assert result.steps[0].usage.prompt_tokens == 300
    assert all(s.usage.prompt_tokens == 0 for s in result.steps[1:])
    assert result.answer.usage.prompt_tokens == 0
    assert result.usage.prompt_tokens == 300


def test_prompt_tokens_go_to_the_step_even_when_the_reply_ends_inside_it():
    from thinkchain.chain.events import Usage

    _, _, result = run(
        [
            Reply(
                "### Step 1: Only\nIt is 3.", usage=Usage(prompt_tokens=200, completion_tokens=9)
            ),
            "3",
        ]
    )
    assert result.steps[0].usage.prompt_tokens == 200
    assert result.wasted_usage.prompt_tokens == 0


@pytest.mark.parametrize(
    ("first", "settings"),
    [
        (CHAIN, {"max_steps": 2, "min_steps": 0}),  # the step limit cuts the reply
        ("### Step 1: Guess\nIt is 3.\n### Answer\n3\n", {"min_steps": 3}),  # answered too early
    ],
)
def test_a_reply_cut_short_still_counts_its_prompt_and_stops_the_backend(first, settings):
    from thinkchain.chain.events import Usage

    rest = "### Step 2: Check\nSpelled out: 3.\n### Step 3: Again\nStill 3.\n### Answer\n**3**\n"
    backend, _, result = run(
        [Reply(first, usage=Usage(prompt_tokens=300, completion_tokens=40)), rest], **settings
    )
    assert result.ok
    assert result.steps[0].usage.prompt_tokens == 300  # not lost with the cut
    assert result.usage.prompt_tokens > 300  # and the follow-up call's prompt on top
    assert backend.requests[0].halt.is_set()  # the backend was told to stop, not abandoned


STEP_1 = "### Step 1: Restate\nWe count the letter r in strawberry.\n\n"
REST = "### Step 2: Spell it out\nr at 3, 8, 9.\n\n### Step 3: Check\nStill 3.\n\n### Answer\n3\n"
LOOPING_STEP_2 = "### Step 2: Spell\n" + "r r r r r " * 80  # the guard's loop check trips


def test_a_step_that_degenerates_is_dropped_and_the_chain_goes_on_a_little_hotter():
    backend, events, result = run([STEP_1 + LOOPING_STEP_2, REST])
    assert result.ok and result.answer.text == "3"
    assert [s.title for s in result.steps] == ["Restate", "Spell it out", "Check"]
    assert "r r r r" not in "".join(s.content for s in result.steps)
    assert result.degenerate_outputs == 1
    [cut] = result.cuts
    assert (cut.index, cut.repeat) == (2, False) and cut.text.startswith("r r r r")
    retry = next(e for e in events if isinstance(e, Retry))
    assert (retry.target, retry.index) == ("step", 2) and "loop" in retry.reason
    # The next call carries the finished step only, and samples hotter to leave the rut.
    again = backend.requests[1]
    assert again.messages[-2] == {"role": "assistant", "content": STEP_1.rstrip()}
    assert again.messages[-1]["content"] == prompt("en", "continue_chain").format(next=2)
    assert again.temperature > backend.requests[0].temperature


def test_each_step_keeps_to_the_token_limit_even_inside_one_reply():
    rambling = "### Step 2: Ramble\n" + " ".join(f"w{i}" for i in range(200))
    backend, events, result = run([STEP_1 + rambling, REST], max_tokens_per_step=40)
    assert backend.requests[0].halt.is_set()  # stopped at the limit, not at the reply's end
    retry = next(e for e in events if isinstance(e, Retry))
    assert retry.reason == "step 2 ran past 40 tokens"
    [cut] = result.cuts
    assert cut.reason == retry.reason and cut.text.startswith("w0 w1 w2")
    assert [s.title for s in result.steps] == ["Restate", "Spell it out", "Check"]
    assert result.wasted_usage.completion_tokens >= 40 and result.ok


def test_runaways_that_keep_coming_end_the_reasoning_and_the_answer_is_asked_for():
    backend, events, result = run(
        [STEP_1 + LOOPING_STEP_2, LOOPING_STEP_2, LOOPING_STEP_2, "It is 3."], min_steps=1
    )
    assert [r.purpose for r in backend.requests] == ["chain", "chain", "chain", "answer"]
    assert result.degenerate_outputs == 3 and [s.title for s in result.steps] == ["Restate"]
    assert sum(isinstance(e, Retry) for e in events) == 2
    cut = [e for e in events if isinstance(e, StepDiscarded)]
    assert len(cut) == 1 and cut[0].reason.endswith("reasoning stops here")
    assert result.ok and result.answer.text == "It is 3."


def test_an_answer_that_degenerates_is_asked_for_again_on_its_own():
    looping_answer = CHAIN.split("### Answer")[0] + "### Answer\n" + "three " * 80
    backend, events, result = run([looping_answer, "**3**"])
    assert [r.purpose for r in backend.requests] == ["chain", "answer"]
    assert len(result.steps) == 3 and result.answer.text == "**3**"
    assert result.degenerate_outputs == 1
    assert [(c.index, c.text[:12]) for c in result.cuts] == [(0, "three three ")]
    retry = next(e for e in events if isinstance(e, Retry))
    assert retry.target == "answer"
    assert sum(isinstance(e, AnswerStarted) for e in events) == 1


def test_steps_that_only_change_the_numbers_are_cut_as_a_loop():
    def day(n):
        return f"### Step {n}: Day {n}\nDoubled again: {2**n} kg × 2 = {2 ** (n + 1)} kg.\n\n"

    looping = "".join(day(n) for n in range(1, 9))
    backend, events, result = run([looping, day(5), day(5), "32 kg"], min_steps=1)
    assert [s.title for s in result.steps] == ["Day 1", "Day 2", "Day 3", "Day 4"]
    assert result.repeated_steps == 3 and backend.requests[0].halt.is_set()
    cut = next(e for e in events if isinstance(e, StepDiscarded))
    assert "only changes the numbers" in cut.reason and cut.reason.endswith("stops here")
    assert result.answer.text == "32 kg"


@pytest.mark.parametrize(
    ("tools", "copied"),
    [
        # The sentence a GSM8K chain of the embedded model gave as its answer (code layout).
        (
            ["python"],
            "The program in a ```python block is run for you as soon as you close the block, "
            "and you see what it printed before you write the next step.",
        ),
        # The layout's own description of the answer, written out instead of an answer.
        ([], "<the result in bold, then one sentence saying why>"),
    ],
)
def test_an_answer_that_copies_the_instructions_is_asked_for_again(tools, copied):
    reply = CHAIN.split("### Answer")[0] + "### Answer\n" + copied + "\n"
    backend, events, result = run([reply, "**3**"], tools=tools)
    assert [r.purpose for r in backend.requests] == ["chain", "answer"]
    assert len(result.steps) == 3 and result.answer.text == "**3**"
    assert [c.reason for c in result.cuts] == [
        "the final answer copied the instructions instead of answering"
    ]
    retry = next(e for e in events if isinstance(e, Retry))
    assert retry.target == "answer" and "copied the instructions" in retry.reason
    assert sum(isinstance(e, AnswerStarted) for e in events) == 1


def test_an_answer_that_quotes_the_question_is_still_an_answer():
    # Only thinkchain's own prompts count as instructions: the user's words may be answered.
    question_text = "How many r are in strawberry?"  # the question run() asks
    reply = CHAIN.split("### Answer")[0] + "### Answer\n" + question_text + "\n"
    backend, _, result = run([reply])
    assert len(backend.requests) == 1 and result.answer.text == question_text


def test_a_separate_answer_call_that_copies_the_instructions_is_tried_again():
    no_answer = CHAIN.split("### Answer")[0]
    copied = prompt("en", "final_answer")
    backend, events, result = run([no_answer, copied, "It is 3."])
    assert result.answer.text == "It is 3."
    assert [r.purpose for r in backend.requests] == ["chain", "answer", "answer"]
    assert any(isinstance(e, Retry) and "copied the instructions" in e.reason for e in events)


def test_an_answer_thrown_away_alone_in_its_reply_counts_that_replys_prompt_as_wasted():
    from thinkchain.chain.events import Usage

    bad_answer = "<the result in bold, then one sentence saying why>"

    # After its program ran, the model goes straight to the answer: that reply has no step
    # to carry its prompt tokens, and the answer that would have carried them is dropped.
    code_step = '### Step 1: Count\n```python\nprint("strawberry".count("r"))\n```\n'
    backend, _, result = run(
        [
            Reply(code_step, usage=Usage(prompt_tokens=300, completion_tokens=20)),
            Reply("### Answer\n" + bad_answer, usage=Usage(prompt_tokens=400, completion_tokens=9)),
            "**3**",
        ],
        min_steps=0,
        tools=["python"],
    )
    assert [r.purpose for r in backend.requests] == ["chain", "chain", "answer"]
    assert result.answer.text == "**3**" and result.steps[0].runs[0].output.strip() == "3"
    assert result.steps[0].usage.prompt_tokens == 300
    assert result.wasted_usage.prompt_tokens == 400  # the dropped answer's reply: not lost
