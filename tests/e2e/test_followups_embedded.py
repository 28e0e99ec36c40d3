"""Follow-up questions on the real default model think as first questions do (issue 27).

Before, a follow-up shown its earlier turn as chat history answered in one bare sentence,
imitating the earlier answer: one untitled step, no program, often wrong. Each follow-up here
is asked after its first question and that question's real answer, with the embedded
default's settings (single-pass, code steps on), in English and Chinese, letters and
arithmetic. Each must get at least the minimum of steps with titles of their own, and run a
program of its own.
"""

from __future__ import annotations

import pytest

from thinkchain import Chain, ChainSettings
from thinkchain.chain.labels import has_own_title
from thinkchain.models.backends.llamacpp import LlamaCppBackend
from thinkchain.sandbox import isolation_report

# Two chains a test on two CPU cores: well within this, but never cut by the default 300 s.
pytestmark = pytest.mark.timeout(900)

# (first question, follow-up, what the follow-up's program must work on)
PAIRS = [
    ("How many letters r are in the word strawberry?", "And how many in the word raspberry?"),
    ("What is 17 * 24?", "And what is that times 3?"),
    ("strawberry中有多少个字母r？", "那 raspberry 里呢？"),
    ("17乘以24等于多少？", "再乘以3呢？"),
]


@pytest.fixture(scope="module")
def backend(default_model_path):
    backend = LlamaCppBackend(default_model_path, n_ctx=4096)
    yield backend
    backend.close()


@pytest.mark.parametrize(("first", "follow_up"), PAIRS, ids=lambda v: str(v)[:12])
def test_a_follow_up_gets_titled_steps_and_a_program_like_a_first_question(
    backend, first, follow_up
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
    # Structure only: whether the program works on the follow-up's word or number is a
    # matter of quality, measured over 30 pairs by `thinkchain eval --dataset followups`
    # (one sample of a 1.5B model varies between machines).
    assert runs and any(run.ok for run in runs), "the follow-up ran no program"
