"""A follow-up question thinks exactly as a first question does (issue 27).

Earlier turns reach the model as background inside the question's own message, after the same
system prompt a first question gets, so a small model does not copy the bare shape of the
earlier answer; the minimum of steps holds for a reply that stops short without an answer; a
step without a title of its own is headed "Step N", never "Step N: Step N".
"""

from __future__ import annotations

import io
import json

import pytest
from rich.console import Console

from thinkchain import Chain, ChainSettings
from thinkchain.chain.prompts import prompt
from thinkchain.cli.render import TerminalView
from thinkchain.eval.datasets import DatasetError, load_dataset, read_jsonl
from thinkchain.history.export import to_markdown
from thinkchain.history.record import ChainRecord
from thinkchain.models.backends.scripted import ScriptedBackend
from thinkchain.proxy.reasoning import Reasoning, RunTranslator
from thinkchain.proxy.step_text import format_steps

EARLIER = [
    {"role": "user", "content": "How many letters r are in the word strawberry?"},
    {"role": "assistant", "content": "There are **3** letters r."},
]
FOLLOW_UP = "And how many in the word raspberry?"
CHAIN = (
    "### Step 1: Restate the question\nCount r in raspberry.\n\n"
    "### Step 2: Spell it\nr, a, s, p, b, e, r, r, y: 3.\n\n"
    "### Step 3: Check\nBackwards gives 3 too.\n\n"
    "### Answer\n**3**\n"
)


def ask(mode: str, question: str, context=(), script=None, **settings):
    script = script or ([CHAIN] if mode == "single-pass" else None)
    if script is None:
        script = (
            [
                json.dumps({"title": f"T{i}", "content": f"c{i}", "next_action": "continue"})
                for i in range(1, 3)
            ]
            + [json.dumps({"title": "T3", "content": "c3", "next_action": "final_answer"}), "3"]
            if mode == "iterative"
            else ["Answer: 3"]
        )
    backend = ScriptedBackend(script)
    chain = Chain(backend, ChainSettings(mode=mode, retry_base_delay=0, **settings))
    result = chain.run(question, context=list(context))
    return backend, result


@pytest.mark.parametrize("mode", ["single-pass", "iterative", "cot", "direct"])
def test_a_follow_up_is_asked_with_the_system_prompt_and_one_question_message(mode):
    first, _ = ask(mode, FOLLOW_UP)
    follow, result = ask(mode, FOLLOW_UP, EARLIER)
    alone, with_context = first.requests[0].messages, follow.requests[0].messages
    # The same layout as a first question: the same system prompt, then one user message.
    assert [m["role"] for m in with_context] == ["system", "user"]
    assert with_context[0] == alone[0]
    asked = with_context[1]["content"]
    # The earlier turns are there as background the new question may refer to, the new
    # question last; no earlier answer is shown as the model's own reply to imitate.
    assert EARLIER[0]["content"] in asked and EARLIER[1]["content"] in asked
    assert asked.rstrip().endswith(FOLLOW_UP)
    assert asked.index(EARLIER[1]["content"]) < asked.index(FOLLOW_UP)
    assert not any(m["role"] == "assistant" for m in with_context)
    # What the user asked is what the chain reports, not the background.
    assert result.question == FOLLOW_UP


def test_a_first_question_is_asked_as_it_is():
    backend, _ = ask("single-pass", FOLLOW_UP)
    assert backend.requests[0].messages[1] == {"role": "user", "content": FOLLOW_UP}


def test_chinese_follow_up_gets_chinese_background_labels():
    earlier = [
        {"role": "user", "content": "strawberry中有多少个字母r？"},
        {"role": "assistant", "content": "3 个。"},
    ]
    backend, result = ask("single-pass", "那 raspberry 里呢？", earlier)
    asked = backend.requests[0].messages[1]["content"]
    assert result.lang == "zh"
    assert asked.startswith(prompt("zh", "earlier_turns").split("\n")[0])
    assert "此前的问题：strawberry中有多少个字母r？" in asked
    assert asked.rstrip().endswith("那 raspberry 里呢？")


def test_system_messages_of_the_conversation_stay_instructions():
    context = [{"role": "system", "content": "Answer in French."}, *EARLIER]
    backend, _ = ask("single-pass", FOLLOW_UP, context)
    messages = backend.requests[0].messages
    assert [m["role"] for m in messages] == ["system", "system", "user"]
    assert messages[1] == {"role": "system", "content": "Answer in French."}
    assert "Answer in French." not in messages[2]["content"]


def test_verification_of_a_follow_up_sees_what_it_refers_to():
    check = "The product is 1224.\nAnswer: 1224"
    script = [CHAIN.replace("**3**", "**1224**"), check]
    backend, result = ask(
        "single-pass",
        "And what is that times 3?",
        [{"role": "user", "content": "What is 17 * 24?"}, {"role": "assistant", "content": "408"}],
        script=script,
        verify=True,
    )
    check_request = backend.requests[-1].messages
    assert "What is 17 * 24?" in check_request[-1]["content"]
    assert "408" in check_request[-1]["content"]
    assert result.answer.text == "**1224**"


@pytest.mark.parametrize("context", [[], EARLIER], ids=["first", "follow-up"])
def test_a_reply_that_stops_short_without_an_answer_is_held_to_min_steps(context):
    # The model's bare one-sentence reply: one untitled step, no answer section.
    bare = "There are 3 letters r in raspberry."
    rest = (
        "### Step 2: Spell it\nr, a, s, p, b, e, r, r, y.\n\n### Step 3: Count\n3.\n\n"
        "### Answer\n3\n"
    )
    backend, result = ask("single-pass", FOLLOW_UP, context, script=[bare, rest], min_steps=3)
    assert result.ok and len(result.steps) == 3
    assert result.answer.text == "3"
    asked_next = backend.requests[1].messages[-1]["content"]
    assert asked_next == prompt("en", "keep_checking_chain").format(remaining=2, next=2)


def test_replies_that_keep_adding_steps_are_held_to_the_minimum_however_many():
    words = ["Restate", "Spell", "Count", "Check", "Recount"]
    one_each = [
        f"### Step {i}: {w}\n{w} the word.\n\n### Answer\n3\n" for i, w in enumerate(words, 1)
    ]
    _, result = ask("single-pass", FOLLOW_UP, script=one_each, min_steps=5, max_attempts=2)
    assert len(result.steps) == 5 and result.answer.text == "3"


def test_replies_that_add_nothing_end_after_max_attempts():
    # The first reply, then max_attempts (3) more: the loop ends and the answer is asked for.
    backend, result = ask("single-pass", FOLLOW_UP, script=["", "", "", "", "3"], min_steps=3)
    assert result.ok and result.answer.text == "3"
    assert backend.requests[-1].purpose == "answer"


def untitled_chain_record(lang="en"):
    bare = "There are 3 letters r in raspberry."
    rest = "### Step 2: Spell it\nr, a, s, p, b, e, r, r, y.\n\n### Answer\n3\n"
    backend = ScriptedBackend([bare, rest])
    chain = Chain(backend, ChainSettings(mode="single-pass", min_steps=2, lang=lang))
    events = list(chain.stream(FOLLOW_UP))
    return events, events[-1].result


@pytest.mark.parametrize(("lang", "heading"), [("en", "Step 1"), ("zh", "第 1 步")])
def test_a_step_without_its_own_title_has_one_heading_in_the_export(lang, heading):
    _, result = untitled_chain_record(lang)
    markdown = to_markdown(ChainRecord.from_result(result, chain_id="x"), lang)
    assert f"## {heading}\n" in markdown
    assert f"{heading}: {heading}" not in markdown and f"{heading}：{heading}" not in markdown


def test_a_step_without_its_own_title_has_one_heading_in_the_proxy_reasoning():
    events, result = untitled_chain_record()
    finished = format_steps(result.steps, "en")
    assert finished.startswith("**Step 1**\nThere are 3 letters r")
    assert "Step 1: Step 1" not in finished
    # Streamed, the same text: the deltas add up to the finished steps.
    translator = RunTranslator()
    items = [item for event in events for item in translator.feed(event)]
    assert "".join(i.text for i in items if isinstance(i, Reasoning)) == finished


def test_a_step_without_its_own_title_has_one_heading_in_the_terminal():
    events, _ = untitled_chain_record()
    err = io.StringIO()
    view = TerminalView(Console(file=err, width=200), io.StringIO(), live_answer=False)
    for event in events:
        view.handle(event)
    shown = err.getvalue()
    assert "Step 1\nThere are 3 letters r" in shown
    assert "Step 1: Step 1" not in shown and "Step 1: \n" not in shown
    assert "Step 2: Spell it" in shown


def test_followups_dataset_pairs_each_follow_up_with_its_first_question():
    conversation = load_dataset("followups")
    standalone = load_dataset("followups:standalone")
    assert len(conversation.items) == len(standalone.items) >= 30
    by_id = {item.id: item for item in standalone.items}
    for item in conversation.items:
        assert len(item.before) == 1 and item.before[0] != item.question
        twin = by_id[item.id]
        assert twin.before == () and twin.answer == item.answer and twin.question != item.question
    kinds = {item.level for item in conversation.items}
    assert {"en-letters", "en-arith", "zh-letters", "zh-arith"} <= kinds
    with pytest.raises(DatasetError, match="variants"):
        load_dataset("followups:nope")


def test_a_jsonl_item_may_name_the_questions_asked_before_it(tmp_path):
    path = tmp_path / "conv.jsonl"
    rows = [
        {"id": "a", "question": "And times 3?", "answer": "1224", "before": ["What is 17 * 24?"]},
        {"id": "b", "question": "q", "answer": "1", "before": "not a list"},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    with pytest.raises(DatasetError, match="line 2: before must be a list"):
        read_jsonl(path)
    path.write_text(json.dumps(rows[0]), encoding="utf-8")
    assert read_jsonl(path)[0].before == ("What is 17 * 24?",)
