"""The single-pass layout's step headings, as the real default model fills them in.

The layout shows the model what a step heading looks like. An earlier layout gave step 2 the
literal title "Title", and the embedded model copied it onto the page ("Step 2: Title"). Each
step must carry a title of its own: not the layout's placeholder, not a bare "Title".
"""

from __future__ import annotations

import re

import pytest

from thinkchain import Chain, ChainSettings
from thinkchain.models.backends.llamacpp import LlamaCppBackend

QUESTIONS = [
    # A GSM8K item (train split) and a letters question, in English and in Chinese: the
    # layout is written in both languages.
    "Bobby made a big batch of soup weighing 80 kg. Each day the batch gets reduced by half. "
    "How many kg will it reach on the fourth day after he made the soup?",
    "单词 banana 中有几个字母 a？",
]

# What copying the layout looks like: the word "title" alone, or the placeholder text that
# describes a title ("<a few words naming what this step does>", "<几个字，概括这一步在做什么>").
PLACEHOLDER = re.compile(
    r"^\s*(?:title|标题|步骤标题)\s*$|[<>]|a few words naming|概括这一步", re.IGNORECASE
)


@pytest.fixture(scope="module")
def backend(default_model_path):
    backend = LlamaCppBackend(default_model_path, n_ctx=4096)
    yield backend
    backend.close()


@pytest.mark.parametrize("question", QUESTIONS)
def test_every_step_has_a_title_of_its_own(backend, question):
    settings = ChainSettings(mode="single-pass", tools=[], seed=0)
    result = Chain(backend, settings).run(question)
    assert result.answer is not None and result.answer.text.strip()
    titles = [step.title for step in result.steps]
    assert len(titles) >= settings.min_steps
    assert all(title.strip() for title in titles), titles
    assert not [title for title in titles if PLACEHOLDER.search(title)], titles
    # Titles name what each step does, so no two steps share one.
    assert len(set(titles)) == len(titles), titles
