"""Free-text steps in a minimal envelope ("iterative-text" mode)."""

from __future__ import annotations

import re

import pytest

from thinkchain import Chain, ChainSettings
from thinkchain.chain.events import Retry, StepDelta
from thinkchain.chain.prompts import prompt
from thinkchain.chain.steps import (
    TEXT_STEP_REGEX,
    StepFormatError,
    TextFieldStream,
    parse_text_step,
)
from thinkchain.models.backends.scripted import Reply, ScriptedBackend

STEP = "Title: Spell the word\ns, t, r, a, w,\nb, e, r, r, y: three r.\nNext: continue"


def test_a_text_step_is_read_with_its_title_reasoning_and_next_action():
    step = parse_text_step(STEP)
    assert step.title == "Spell the word"
    assert step.content == "s, t, r, a, w,\nb, e, r, r, y: three r."
    assert step.next_action == "continue"
    assert step.canonical == STEP
    # The envelope the embedded model is held to accepts exactly this layout.
    assert re.fullmatch(TEXT_STEP_REGEX, STEP)


@pytest.mark.parametrize(
    "text",
    [
        "**Title:** Spell\nreasoning\n**Next:** final_answer",
        "## Spell\nreasoning\nNext: Final Answer.",
        "```\nTitle: Spell\nreasoning\nNext: `final_answer`\n```",
    ],
)
def test_lenient_variants(text):
    step = parse_text_step(text)
    assert step.title == "Spell" and step.content == "reasoning"
    assert step.next_action == "final_answer"


def test_a_python_block_in_the_reasoning_keeps_its_fences():
    # Code steps run the block, and the streamed step showed it fenced.
    text = "Title: Count\nLet Python count.\n```python\nprint(3)\n```\nNext: continue"
    assert parse_text_step(text).content == "Let Python count.\n```python\nprint(3)\n```"


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", "empty"),
        ("Just some reasoning.\nNext: continue", "first line"),
        ("Title: T\nreasoning without an ending", "last line"),
        ("Title: T\nNext: continue", "no reasoning"),
        ("Title: T\nreasoning\nNext: perhaps", "not 'perhaps'"),
    ],
)
def test_invalid_text_steps_explain_themselves(text, error):
    with pytest.raises(StepFormatError, match=error):
        parse_text_step(text)


@pytest.mark.parametrize("chunk", [1, 3, 8, 1000])
def test_fields_stream_title_then_content_without_the_next_line(chunk):
    stream = TextFieldStream()
    out: list[tuple[str, str]] = []
    for i in range(0, len(STEP), chunk):
        out += stream.feed(STEP[i : i + chunk])
    title = "".join(t for f, t in out if f == "title")
    content = "".join(t for f, t in out if f == "content")
    assert title == "Spell the word"
    assert content.strip() == "s, t, r, a, w,\nb, e, r, r, y: three r."


def test_iterative_text_chain_sends_the_envelope_and_keeps_the_steps():
    steps = [
        "Title: Restate\nCount r in strawberry.\nNext: continue",
        STEP,
        "Title: Check\nBackwards also three.\nNext: final_answer",
    ]
    backend = ScriptedBackend([*steps, "**3**"])
    events = list(Chain(backend, ChainSettings(mode="iterative-text")).stream("r in strawberry?"))
    result = events[-1].result
    assert result.ok and [s.title for s in result.steps] == ["Restate", "Spell the word", "Check"]
    first = backend.requests[0]
    assert first.messages[0]["content"] == prompt("en", "text_step_system")
    assert first.schema is None and first.regex == TEXT_STEP_REGEX
    assert backend.requests[2].messages[-1] == {"role": "assistant", "content": STEP}
    titles = [e.text for e in events if isinstance(e, StepDelta) and e.field == "title"]
    assert titles == ["Restate", "Spell the word", "Check"]


def test_invalid_text_step_gets_the_text_specific_correction():
    backend = ScriptedBackend(["no envelope here", STEP.replace("continue", "final_answer"), "3"])
    events = list(Chain(backend, ChainSettings(mode="iterative-text", min_steps=0)).stream("q"))
    retry = next(e for e in events if isinstance(e, Retry))
    assert "first line" in retry.reason
    assert backend.requests[1].messages[-1]["content"] == prompt("en", "invalid_text_step").format(
        error=retry.reason
    )
    assert events[-1].result.ok


def test_text_step_cut_at_the_limit_is_repaired_on_the_last_attempt():
    cut = Reply("Title: Long\nreasoning that goes on", finish_reason="length")
    backend = ScriptedBackend([cut, cut, cut, "3"])
    result = Chain(backend, ChainSettings(mode="iterative-text", max_steps=1, min_steps=0)).run("q")
    assert result.steps[0].title == "Long" and "repaired" in result.steps[0].notes[0]


def test_a_model_that_writes_past_its_next_line_is_stopped_there():
    rambling = STEP + "\nTitle: Another step\n" + "more words " * 200 + "\nNext: final_answer"
    backend = ScriptedBackend([Reply(rambling, chunk_size=5), *[STEP] * 2, "3"])
    chain = Chain(backend, ChainSettings(mode="iterative-text", max_steps=1, min_steps=0))
    events = list(chain.stream("q"))
    result = events[-1].result
    assert result.steps[0].content == "s, t, r, a, w,\nb, e, r, r, y: three r."
    assert backend.requests[0].halt.is_set()  # the backend was told to stop
    streamed = sum(len(e.text) for e in events if isinstance(e, StepDelta))
    assert streamed < len(STEP)  # nothing after the Next line reached the page
    assert result.steps[0].usage.completion_tokens < len(rambling) // 5


def test_json_step_followed_by_more_text_is_stopped_after_the_object():
    from thinkchain.models.backends.scripted import step_json

    first = step_json("A", "The first step, which is new.")
    backend = ScriptedBackend([Reply(first + "\n" + step_json("B", "x " * 300), chunk_size=4), "3"])
    result = Chain(backend, ChainSettings(mode="iterative", max_steps=1, min_steps=0)).run("q")
    assert result.steps[0].title == "A"
    assert backend.requests[0].halt.is_set()
    assert result.steps[0].usage.completion_tokens <= len(first) // 4 + 2
