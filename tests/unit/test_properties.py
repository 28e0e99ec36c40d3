"""Whatever a model says and whatever the transport does, every chain ends, once, in bounds.

Hypothesis draws the chain's settings and an endless stream of model behaviour: valid and
invalid steps in both formats, whole single-pass chains, answers, empty replies, runaway
whitespace and loops, cut streams, refusals, overflows.  For every draw:

* the public API returns normally (no exception escapes);
* the events end with exactly one terminal event, and nothing follows it;
* the number of model calls stays within (max_steps + 1) calls, each with its allowed
  attempts and transport retries, plus the verification call;
* steps never exceed max_steps (+1 for the verification step), and a completed chain has
  a non-empty answer.
"""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from thinkchain import Chain, ChainSettings
from thinkchain.chain.backend import (
    BackendError,
    ContextOverflow,
    RequestRejected,
    TransportError,
)
from thinkchain.chain.events import ChainCompleted, ChainFailed, is_terminal
from thinkchain.chain.settings import MODES
from thinkchain.models.backends.scripted import Fault, Reply, ScriptedBackend

texts = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), max_codepoint=0x2FFF), max_size=60
)


def json_step(title: str, content: str, action: str) -> str:
    return json.dumps({"title": title, "content": content, "next_action": action})


behaviours = st.one_of(
    # well-formed steps, in either format
    st.builds(json_step, texts, texts, st.sampled_from(["continue", "final_answer", "maybe"])),
    st.builds(
        lambda t, c, a: f"Title: {t}\n{c}\nNext: {a}",
        texts,
        texts,
        st.sampled_from(["continue", "final_answer", "??"]),
    ),
    # a single-pass chain, possibly without an answer
    st.builds(
        lambda t, c, ans: f"### Step 1: {t}\n{c}\n### Step 2: check\n{c}!\n{ans}",
        texts,
        texts,
        st.sampled_from(["### Answer\n3", "", "Answer: 4"]),
    ),
    # broken output
    texts,
    st.builds(lambda t: '{"title": "' + t, texts),  # cut mid-JSON
    st.just(""),
    st.just('{"title": "T", "content": "' + " " * 400),  # runaway whitespace
    st.just("again and again " * 60),  # a loop
    st.builds(lambda t: Reply(t, finish_reason="length"), texts),
    # transport and server behaviour
    st.builds(lambda t: Fault(TransportError("cut", server="s"), after_text=t), texts),
    st.just(Fault(TransportError("HTTP 429", server="s", retry_after=0.0))),
    st.just(Fault(RequestRejected("HTTP 400: bad", server="s"))),
    st.just(Fault(ContextOverflow("too long", server="s"))),
    st.just(Fault(BackendError("boom", server="s"))),
)

chain_settings = st.builds(
    lambda mode, max_steps, min_frac, attempts, retries, verify: ChainSettings(
        mode=mode,
        max_steps=max_steps,
        min_steps=int(max_steps * min_frac),
        max_attempts=attempts,
        max_retries=retries,
        retry_base_delay=0.0,
        retry_max_delay=0.0,
        verify=verify,
    ),
    st.sampled_from(MODES),
    st.integers(1, 5),
    st.floats(0, 1),
    st.integers(1, 3),
    st.integers(0, 2),
    st.booleans(),
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(chain_settings, st.lists(behaviours, min_size=1, max_size=12), texts)
def test_every_chain_terminates_once_within_its_bounds(chain_cfg, script, question):
    calls = {"n": 0}

    def endless(request):
        item = script[calls["n"] % len(script)]
        calls["n"] += 1
        return item

    backend = ScriptedBackend([endless], repeat_last=True)
    events = list(Chain(backend, chain_cfg).stream(question or "q"))

    terminals = [e for e in events if is_terminal(e)]
    assert len(terminals) == 1 and events[-1] is terminals[0]
    s = chain_cfg
    per_call = s.max_attempts * (s.max_retries + 1)
    # Every step and the answer may also be re-asked once per attempt in single-pass mode.
    bound = (s.max_steps + 1) * per_call * (s.max_attempts + 1) + (s.max_retries + 1)
    assert len(backend.requests) <= bound
    result = terminals[0].result
    assert len(result.steps) <= s.max_steps + (1 if s.verify else 0)
    if isinstance(terminals[0], ChainCompleted):
        assert result.answer is not None and result.answer.text.strip()
    else:
        assert isinstance(terminals[0], ChainFailed) and terminals[0].error.message
    json.dumps(result.to_dict())
