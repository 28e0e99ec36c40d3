"""Code steps: a step's Python block runs in the real sandbox; the model goes on with its output."""

from __future__ import annotations

import json

import pytest

from thinkchain import Chain, ChainSettings
from thinkchain.chain.events import (
    ChainCompleted,
    CodeDone,
    CodeStarted,
    Step,
    StepDelta,
    StepDone,
)
from thinkchain.chain.prompts import prompt
from thinkchain.chain.shapes.code import find_code
from thinkchain.chain.splitter import StepSplitter
from thinkchain.models.backends.scripted import ScriptedBackend, count_words, step_json
from thinkchain.sandbox import SandboxLimits

QUESTION = "How many letters r are in the word strawberry?"

COUNT_STEP = """### Step 1: Count with code
Python can count the letters exactly.
```python
word = "strawberry"
# Step 2: this comment is code, not a heading
print(word.count("r"))
```
### Step 2: This text comes after the block and must never be used
"""

AFTER_OUTPUT = """### Step 2: Read the output
The program printed 3.

### Step 3: Check
s-t-r-a-w-b-e-r-r-y has r at positions 3, 8 and 9.

### Answer
**3**
"""


def run(script, question=QUESTION, **settings):
    backend = ScriptedBackend(script)
    defaults = {"mode": "single-pass", "tools": ("python",), "retry_base_delay": 0}
    chain = Chain(backend, ChainSettings(**{**defaults, **settings}))
    events = list(chain.stream(question))
    return backend, events, events[-1].result


def last_user_text(request) -> str:
    return [m for m in request.messages if m["role"] == "user"][-1]["content"]


def test_a_python_block_runs_and_the_model_continues_with_its_output():
    backend, events, result = run([COUNT_STEP, AFTER_OUTPUT])
    assert isinstance(events[-1], ChainCompleted)
    assert result.answer.text == "**3**"
    first = result.steps[0]
    assert first.title == "Count with code"
    assert first.content.rstrip().endswith("```")  # the step ends at its block
    assert "must never be used" not in first.content
    assert [run.output.strip() for run in first.runs] == ["3"]
    assert first.runs[0].ok
    # The second call sees the code in the assistant turn and its output in the user turn.
    follow_up = last_user_text(backend.requests[1])
    assert "3" in follow_up and "### Step 2:" in follow_up
    assert 'print(word.count("r"))' in backend.requests[1].messages[-2]["content"]
    # Consumers saw the run start and end, then the step done once, with its run.
    kinds = [type(e).__name__ for e in events]
    started = kinds.index("CodeStarted")
    assert kinds[started + 1 : started + 3] == ["CodeDone", "StepDone"]
    done = [e.step for e in events if isinstance(e, StepDone)]
    assert [s.index for s in done] == [1, 2, 3]
    assert done[0].runs == first.runs
    assert next(e for e in events if isinstance(e, CodeStarted)).code.endswith(
        'print(word.count("r"))'
    )


def test_the_system_prompt_offers_code_only_when_code_steps_are_on():
    backend, _, _ = run([COUNT_STEP, AFTER_OUTPUT])
    assert backend.requests[0].messages[0]["content"] == prompt("en", "single_pass_code_system")
    off_backend, events, result = run(
        [COUNT_STEP.replace("### Step 2: This text", "### Step 2: Then") + AFTER_OUTPUT],
        tools=(),
    )
    assert off_backend.requests[0].messages[0]["content"] == prompt("en", "single_pass_system")
    assert not any(isinstance(e, (CodeStarted, CodeDone)) for e in events)
    assert len(off_backend.requests) == 1  # nothing cut the reply
    assert all(not step.runs for step in result.steps)


def test_an_exception_comes_back_to_the_model_which_fixes_the_code():
    failing = "### Step 1: Compute\n```python\nprint(10 / 0)\n```\n"
    fixed = "### Step 2: Fix it\n```python\nprint(10 / 2)\n```\n"
    backend, _events, result = run([failing, fixed, AFTER_OUTPUT.replace("Step 2", "Step 3")])
    assert result.ok
    first, second = result.steps[0].runs[0], result.steps[1].runs[0]
    assert first.status == "error" and "ZeroDivisionError" in (first.error or "")
    assert "ZeroDivisionError" in last_user_text(backend.requests[1])
    assert second.ok and second.output.strip() == "5.0"


def test_an_endless_loop_is_stopped_and_the_chain_still_answers():
    looping = "### Step 1: Loop\n```python\nwhile True:\n    pass\n```\n"
    limits = SandboxLimits(wall_seconds=2, cpu_seconds=1)
    backend, _events, result = run([looping, AFTER_OUTPUT], code_limits=limits)
    assert result.ok and result.answer.text == "**3**"
    run_ = result.steps[0].runs[0]
    assert run_.status == "timeout"
    assert run_.error
    assert run_.error in last_user_text(backend.requests[1])


def test_code_runs_are_bounded_per_chain():
    code = "### Step {n}: Again\n```python\nprint({n})\n```\n"
    script = [code.format(n=1), code.format(n=2), AFTER_OUTPUT.replace("Step 2", "Step 3")]
    backend, events, result = run(script, max_code_runs=1)
    assert result.ok
    assert len(result.steps[0].runs) == 1
    assert result.steps[1].runs == ()
    assert sum(isinstance(e, CodeStarted) for e in events) == 1
    told = last_user_text(backend.requests[2])
    assert prompt("en", "code_spent").format(limit=1) in told


def test_iterative_steps_run_their_code_too():
    code_step = step_json(
        "Count with code", 'Counting exactly.\n```python\nprint("strawberry".count("r"))\n```'
    )
    script = [
        code_step,
        step_json("Read the output", "The program printed 3."),
        step_json("Check", "Positions 3, 8 and 9.", "final_answer"),
        "3",
    ]
    backend, _events, result = run(script, mode="iterative")
    assert result.ok
    assert result.steps[0].runs[0].output.strip() == "3"
    assert "3" in last_user_text(backend.requests[1])
    assert prompt("en", "code_tools") in backend.requests[0].messages[0]["content"]


def test_a_code_step_that_says_final_answer_still_shows_the_model_its_output():
    code_step = step_json("Count", '```python\nprint("strawberry".count("r"))\n```', "final_answer")
    script = [
        code_step,
        step_json("Read", "It printed 3."),
        step_json("Check", "Three r.", "final_answer"),
        "3",
    ]
    backend, _, result = run(script, mode="iterative", min_steps=0)
    assert result.ok and len(result.steps) == 3  # the model saw the output before answering
    assert "3" in last_user_text(backend.requests[1])


def test_runs_survive_the_json_round_trip_of_a_step():
    _, _, result = run([COUNT_STEP, AFTER_OUTPUT])
    data = json.loads(json.dumps(result.to_dict()))
    again = Step.from_dict(data["steps"][0])
    assert again.runs == result.steps[0].runs
    assert "runs" not in data["steps"][1]  # steps without code keep their old shape


def test_chinese_questions_get_chinese_code_instructions():
    answer = (
        "### 步骤 2：读出结果\n程序输出 3。\n\n### 步骤 3：检查\n第 3、8、9 位。\n\n"
        "### 答案\n**3**\n"
    )
    code = '### 步骤 1：用代码数\n```python\nprint("strawberry".count("r"))\n```\n'
    backend, _, result = run([code, answer], question="strawberry中有多少个字母r？")
    assert result.ok and result.steps[0].runs[0].output.strip() == "3"
    assert backend.requests[0].messages[0]["content"] == prompt("zh", "single_pass_code_system")
    assert "3" in last_user_text(backend.requests[1])


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("```python\nprint(1)\n```", "print(1)"),
        ("text\n```py\nx = 2\nx\n```\nmore", "x = 2\nx"),
        ("```python\nprint(1)", None),  # not closed yet
        ("```\nprint(1)\n```", None),  # not marked as Python
        ("```python\n\n```", None),  # empty
    ],
)
def test_find_code(text, code):
    assert find_code(text) == code


def test_a_heading_inside_a_code_block_is_code():
    splitter = StepSplitter()
    pieces = splitter.feed(COUNT_STEP) + splitter.finish()
    steps = [p for p in pieces if p.kind == "step"]
    assert len(steps) == 2  # "# Step 2: ..." inside the fence is not a step
    content = "".join(p.text for p in pieces if p.kind == "content")
    assert "# Step 2: this comment is code" in content


def test_streamed_content_shows_the_code_as_the_model_wrote_it():
    _, events, _ = run([COUNT_STEP, AFTER_OUTPUT])
    streamed = "".join(e.text for e in events if isinstance(e, StepDelta) and e.index == 1)
    assert '```python\nword = "strawberry"' in streamed


def test_code_that_prints_nothing_is_asked_to_print():
    tally = "counts = {}\nfor ch in 'strawberry':\n    counts[ch] = counts.get(ch, 0) + 1"
    silent = f"### Step 1: Count\n```python\n{tally}\n```\n"
    printing = "### Step 2: Print it\n```python\nprint('strawberry'.count('r'))\n```\n"
    backend, _, result = run([silent, printing, AFTER_OUTPUT.replace("Step 2", "Step 3")])
    assert result.ok
    assert result.steps[0].runs[0].ok and not result.steps[0].runs[0].output
    assert prompt("en", "code_silent") in last_user_text(backend.requests[1])
    assert result.steps[1].runs[0].output.strip() == "3"


def test_a_sandbox_that_cannot_run_code_is_not_asked_again(monkeypatch):
    # A machine without the isolation the sandbox requires: the first block says why, and
    # later blocks are not run, so the model reasons on without code.
    from thinkchain.sandbox import sandbox as sandbox_module

    class Unsafe:
        safe = False
        problems = ("no bubblewrap",)

    monkeypatch.setattr(sandbox_module, "isolation_report", lambda method: Unsafe())
    code = "### Step {n}: Try\n```python\nprint({n})\n```\n"
    script = [code.format(n=1), code.format(n=2), AFTER_OUTPUT.replace("Step 2", "Step 3")]
    _, events, result = run(script)
    assert result.ok
    first = result.steps[0].runs[0]
    assert first.status == "sandbox_error" and "bubblewrap" in (first.error or "")
    assert result.steps[1].runs == ()
    assert sum(isinstance(e, CodeStarted) for e in events) == 1


def test_every_calls_prompt_tokens_are_counted_once_with_code_steps():
    backend, _, result = run([COUNT_STEP, AFTER_OUTPUT])
    sent = sum(count_words(request.messages) for request in backend.requests)
    assert result.usage.prompt_tokens == sent
    assert result.steps[0].usage.prompt_tokens == count_words(backend.requests[0].messages)


def test_replies_without_headings_after_a_program_still_stop_at_max_steps():
    # After a program's output, a small model went on without step headings: every reply
    # opened an untitled step, and the page showed five steps with max_steps 2.
    untitled = "The program printed 42, so the sum is 42.\n```python\nprint(12 + 30)\n```\n"
    _, events, result = run(
        [COUNT_STEP, untitled, untitled, untitled, "The answer is 42."],
        max_steps=2,
        min_steps=1,
    )
    assert [s.index for s in result.steps] == [1, 2]
    assert len([e for e in events if isinstance(e, StepDone) and e.step.index > 2]) == 0
    assert result.answer is not None and result.hit_step_limit
