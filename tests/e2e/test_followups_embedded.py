"""Follow-up questions on the real default model think as first questions do (issue 27).

Before, a follow-up shown its earlier turn as chat history answered in one bare sentence,
imitating the earlier answer: one untitled step, no program, often wrong. Each follow-up here
is asked after its first question and that question's real answer, with the embedded
default's settings (single-pass, code steps on), in English and Chinese, letters and
arithmetic. Each must get at least the minimum of steps with titles of their own, and run a
program about the follow-up itself.
"""

from __future__ import annotations

import pytest

from thinkchain import Chain, ChainSettings
from thinkchain.backends.llamacpp import LlamaCppBackend
from thinkchain.labels import has_own_title
from thinkchain.sandbox import isolation_report

# Two chains a test on two CPU cores: well within this, but never cut by the default 300 s.
pytestmark = pytest.mark.timeout(900)

# (first question, follow-up, what the follow-up's program must work on)
PAIRS = [
    (
        "How many letters r are in the word strawberry?",
        "And how many in the word raspberry?",
        ("raspberry",),
    ),
    ("What is 17 * 24?", "And what is that times 3?", ("3",)),
    ("strawberry中有多少个字母r？", "那 raspberry 里呢？", ("raspberry",)),
    ("17乘以24等于多少？", "再乘以3呢？", ("3",)),
]


@pytest.fixture(scope="module")
def backend(default_model_path):
    backend = LlamaCppBackend(default_model_path, n_ctx=4096)
    yield backend
    backend.close()


@pytest.mark.parametrize(("first", "follow_up", "about"), PAIRS, ids=lambda v: str(v)[:12])
def test_a_follow_up_gets_titled_steps_and_a_program_like_a_first_question(
    backend, first, follow_up, about
):
    if not isolation_report().safe:
        pytest.skip("code steps need the sandbox (bubblewrap)")
    settings = ChainSettings(tools=("python",), seed=0)
    chain = Chain(backend, settings)
    earlier = chain.run(first)
    assert earlier.answer is not None
    context = [
        {"role": "user", "content": first},
        {"role": "assistant", "content": earlier.answer.text},
    ]
    result = chain.run(follow_up, context=context)

    assert result.ok and result.answer is not None and result.answer.text.strip()
    titled = [s for s in result.steps if has_own_title(s.index, s.title)]
    assert len(titled) >= settings.min_steps, [s.title for s in result.steps]
    runs = [run for step in result.steps for run in step.runs]
    assert runs and runs[0].ok, "the follow-up ran no program"
    # The program works on the follow-up's own question, not only on the earlier one.
    assert all(word in runs[0].code for word in about), runs[0].code
