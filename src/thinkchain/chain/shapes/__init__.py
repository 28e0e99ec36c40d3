"""Chain shapes: how the model is asked to think, one module each, dispatched by mode.

A shape is an async function of (the chain's model calls, the cleaned question, the prompt
language) that emits ChainStarted, the steps and the answer.  Adding a shape is one module
and one row in SHAPES.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from thinkchain.chain.model_calls import ModelCalls
from thinkchain.chain.shapes.iterative import run_iterative
from thinkchain.chain.shapes.single_call import run_single_call
from thinkchain.chain.shapes.single_pass import run_single_pass

Shape = Callable[[ModelCalls, str, str], Awaitable[None]]

SHAPES: dict[str, Shape] = {
    "iterative": run_iterative,
    "iterative-text": run_iterative,
    "single-pass": run_single_pass,
    "direct": run_single_call,
    "cot": run_single_call,
}
