"""The verification phase: solve again another way, compare, revise."""

from __future__ import annotations

from thinkchain import Chain, ChainSettings
from thinkchain.chain.backend import TransportError
from thinkchain.chain.events import AnswerDone, Retry, StepDiscarded, StepDone
from thinkchain.chain.prompts import prompt
from thinkchain.models.backends.scripted import Fault, Reply, ScriptedBackend, step_json

STEPS = [
    step_json("Add", "12 + 30 = 42, which is new.", "continue"),
    step_json("Check", "Subtracting 30 from 42 gives 12 back.", "final_answer"),
]


def run(verify_reply, answer="**42**", **settings):
    backend = ScriptedBackend([*STEPS, answer, verify_reply])
    chain = Chain(
        backend,
        ChainSettings(mode="iterative", verify=True, min_steps=0, retry_base_delay=0, **settings),
    )
    events = list(chain.stream("What is 12 + 30?"))
    return backend, events, events[-1].result


def test_agreeing_check_keeps_the_answer_and_shows_as_a_step():
    backend, events, result = run("Counting up from 30 by 12: 42.\nAnswer: 42")
    assert result.ok and not result.revised
    assert result.answer.text == "**42**"
    assert result.steps[-1].title == "Verification"
    assert result.steps[-1].notes == ("verification",)
    verify_request = backend.requests[-1]
    assert verify_request.purpose == "verify"
    assert verify_request.messages == [
        {"role": "system", "content": prompt("en", "verify_system")},
        {
            "role": "user",
            "content": prompt("en", "verify_user").format(
                question="What is 12 + 30?", answer="**42**"
            ),
        },
    ]
    assert sum(isinstance(e, AnswerDone) for e in events) == 1


def test_disagreeing_check_revises_the_answer():
    _, events, result = run("Working backwards, 12 + 30 = 43.\nAnswer: **43**")
    assert result.revised and result.answer.text == "43"
    assert result.answer_before_check.text == "**42**"  # what the check overturned
    assert result.to_dict()["answer_before_check"] == "**42**"
    kinds = [type(e).__name__ for e in events]
    # The first answer is withdrawn (a Retry on the answer) and the revised one follows.
    retry = next(e for e in events if isinstance(e, Retry))
    assert retry.target == "answer"
    assert kinds.index("Retry") > kinds.index("StepDone")
    assert [e.answer.text for e in events if isinstance(e, AnswerDone)] == ["**42**", "43"]


def test_a_failed_check_leaves_the_answer_alone():
    backend = ScriptedBackend([*STEPS, "**42**"] + [Fault(TransportError("down", server="s"))] * 3)
    chain = Chain(
        backend,
        ChainSettings(
            mode="iterative", verify=True, min_steps=0, retry_base_delay=0, max_retries=2
        ),
    )
    events = list(chain.stream("What is 12 + 30?"))
    result = events[-1].result
    assert result.ok and result.answer.text == "**42**"
    assert any(isinstance(e, StepDiscarded) for e in events)
    assert len([e for e in events if isinstance(e, StepDone)]) == 2


def test_unreadable_check_changes_nothing():
    _, _, result = run("I am not sure.")
    assert not result.revised and result.answer.text == "**42**"


def test_a_check_that_states_no_answer_line_changes_nothing():
    # A result read from prose would be the first number of this sentence (6), not 42 or 43.
    prose = "The proposed answer is wrong because 6 items were left out; the total is 43."
    _, _, result = run("Recounting the items one by one.\n" + prose)
    assert not result.revised and result.answer.text == "**42**"


def test_the_check_is_reminded_of_its_answer_line_last():
    backend, _, _ = run("Answer: 42")
    assert backend.requests[-1].messages[-1]["content"].endswith('"Answer: <result>".')


def test_a_boxed_result_is_a_stated_answer_too():
    _, _, result = run("Working backwards, 43 - 30 = 13, not 12.\nSo it is \\(\\boxed{43}\\).")
    assert result.revised and result.answer.text == "43"
    assert result.answer_before_check.text == "**42**"  # what the check overturned
    assert result.to_dict()["answer_before_check"] == "**42**"


def test_a_check_that_degenerates_is_cut_counted_and_the_answer_stands():
    loop = "Let me check again. " * 200
    backend = ScriptedBackend([*STEPS, "**42**", Reply(loop, chunk_size=16)])
    chain = Chain(
        backend, ChainSettings(mode="iterative", verify=True, min_steps=0, retry_base_delay=0)
    )
    events = list(chain.stream("What is 12 + 30?"))
    result = events[-1].result
    assert result.ok and not result.revised and result.answer.text == "**42**"
    discarded = [e for e in events if isinstance(e, StepDiscarded)]
    assert len(discarded) == 1 and "loop" in discarded[0].reason
    # The cut is kept like any other, with the text it had produced, and its tokens count.
    assert result.degenerate_outputs == 1
    assert result.cuts[0].text.startswith("Let me check again.")
    assert result.wasted_usage.completion_tokens > 0


# With code steps on, the check computes with a program as the chain did: a check that counted
# in its head would overturn the answers the chain's programs got right.
STRAWBERRY = "How many letters r are in the word strawberry?"
COUNT_CHECK = (
    "Counting again with a program.\n"
    '```python\nprint("strawberry".count("r"))\n```\n'
    "Output: 2\nAnswer: 2"  # what the model imagines after its block is never used
)


def run_with_code(check_replies, answer="**3**", **settings):
    backend = ScriptedBackend([*STEPS, answer, *check_replies])
    chain = Chain(
        backend,
        ChainSettings(
            mode="iterative",
            verify=True,
            tools=("python",),
            min_steps=0,
            retry_base_delay=0,
            **settings,
        ),
    )
    events = list(chain.stream(STRAWBERRY))
    return backend, events, events[-1].result


def test_with_code_steps_the_check_runs_its_program_and_goes_on_from_the_real_output():
    backend, events, result = run_with_code([COUNT_CHECK, "The program printed 3.\nAnswer: 3"])
    assert result.ok and not result.revised and result.answer.text == "**3**"
    check = result.steps[-1]
    assert check.notes == ("verification",)
    assert [run.output.strip() for run in check.runs] == ["3"] and check.runs[0].ok
    # The step holds the block, then what the model said after the output; not the imagined
    # output it wrote past the block.
    assert check.content.index("```python") < check.content.index("The program printed 3.")
    assert "Output: 2" not in check.content and "Answer: 2" not in check.content
    # The model was offered code, and its second reply saw the real output and was asked to
    # finish with an answer line.
    first, second = backend.requests[-2:]
    assert first.messages[0]["content"] == (
        prompt("en", "verify_system") + "\n\n" + prompt("en", "code_tools")
    )
    assert second.messages[-2]["role"] == "assistant"
    assert second.messages[-2]["content"].rstrip().endswith("```")
    assert "3" in second.messages[-1]["content"]
    assert second.messages[-1]["content"].endswith(prompt("en", "verify_continue"))
    # Consumers saw the run under the verification step, before that step was done.
    kinds = [(type(e).__name__, getattr(e, "index", None)) for e in events]
    check_index = check.index
    assert kinds.index(("CodeStarted", check_index)) < kinds.index(("CodeDone", check_index))
    done = [e for e in events if isinstance(e, StepDone) and e.step.index == check_index]
    assert len(done) == 1 and done[0].step.runs == check.runs
    assert check.usage.completion_tokens > 0 and check.usage.prompt_tokens > 0
    assert check.seconds >= check.runs[0].seconds


def test_a_program_in_the_check_can_revise_a_wrong_answer():
    _, _, result = run_with_code([COUNT_CHECK, "So there are 3.\nAnswer: 3"], answer="**2**")
    assert result.revised and result.answer.text == "3"
    assert result.answer_before_check.text == "**2**"


def test_a_check_keeps_writing_programs_only_up_to_the_chains_limit():
    again = 'Once more.\n```python\nprint("strawberry".count("r"))\n```\n'
    backend, _, result = run_with_code([again] * 5, max_code_runs=2)
    check = result.steps[-1]
    assert len(check.runs) == 2  # the third block is not run; the model is told the limit
    spent = prompt("en", "code_spent").format(limit=2)
    assert backend.requests[-1].messages[-1]["content"].startswith(spent)
    assert len(backend.requests) == len(STEPS) + 1 + 4  # steps, answer, four check replies
    assert result.ok and result.answer.text == "**3**"  # no answer line: the answer stands


def test_without_code_steps_a_block_in_the_check_is_text():
    backend, events, result = run(COUNT_CHECK)
    assert backend.requests[-1].messages[0]["content"] == prompt("en", "verify_system")
    assert not result.steps[-1].runs
    assert not any(type(e).__name__ in ("CodeStarted", "CodeDone") for e in events)
    assert "Answer: 2" in result.steps[-1].content


def test_a_check_cut_mid_block_is_tried_again_from_scratch():
    cut = Fault(TransportError("connection reset", server="s"), after_text="```python\nprint(")
    _, events, result = run_with_code([cut, COUNT_CHECK, "So 3 it is.\nAnswer: 3"], answer="**2**")
    check = result.steps[-1]
    # The retry's block is found on its own, not glued to the text of the try that broke.
    assert [run.code for run in check.runs] == ['print("strawberry".count("r"))']
    assert [run.output.strip() for run in check.runs] == ["3"]
    assert result.revised and result.answer.text == "3"
    assert any(isinstance(e, Retry) and e.target == "step" for e in events)
