"""Reasoning steps as a model writes them: two formats, lenient parsers, streaming readers.

* ``parsing``: what both formats share (the parsed step, the error sent back to the model);
* ``json_format``: a JSON object per step, with its schema;
* ``text_format``: free text between a ``Title:`` line and a ``Next:`` line;
* ``formats``: the two as ``StepFormat`` values a chain picks from.
"""

from __future__ import annotations

from thinkchain.chain.steps.formats import JSON_STEPS, TEXT_STEPS, StepFormat
from thinkchain.chain.steps.json_format import (
    STEP_KEYS,
    STEP_SCHEMA,
    StepFieldStream,
    parse_step,
    repair_truncated,
    step_from_object,
)
from thinkchain.chain.steps.parsing import ParsedStep, StepFormatError, normalise_next_action
from thinkchain.chain.steps.text_format import (
    TEXT_STEP_REGEX,
    TextFieldStream,
    parse_text_step,
    repair_text_step,
)

__all__ = [
    "JSON_STEPS",
    "STEP_KEYS",
    "STEP_SCHEMA",
    "TEXT_STEPS",
    "TEXT_STEP_REGEX",
    "ParsedStep",
    "StepFieldStream",
    "StepFormat",
    "StepFormatError",
    "TextFieldStream",
    "normalise_next_action",
    "parse_step",
    "parse_text_step",
    "repair_text_step",
    "repair_truncated",
    "step_from_object",
]
