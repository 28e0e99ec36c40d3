"""The step formats a chain can ask for: everything that differs between JSON and free text."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from thinkchain.chain.steps.json_format import (
    STEP_SCHEMA,
    StepFieldStream,
    parse_step,
    repair_truncated,
)
from thinkchain.chain.steps.parsing import ParsedStep
from thinkchain.chain.steps.text_format import (
    TEXT_STEP_REGEX,
    TextFieldStream,
    parse_text_step,
    repair_text_step,
)


@dataclass(frozen=True)
class StepFormat:
    """Everything that differs between JSON steps and free-text steps."""

    name: str
    system_prompt: str  # prompt name (prompts/<lang>/<name>.md)
    invalid_prompt: str
    schema: dict[str, Any] | None
    regex: str | None  # the envelope a reply must match, where the backend can hold it
    parse: Callable[[str], ParsedStep]
    repair: Callable[[str], ParsedStep | None]
    fields: Callable[[], StepFieldStream | TextFieldStream]
    keep_raw: Callable[[str, ParsedStep], bool]  # may the model's own text stay in the chat?


def _json_raw_is_clean(raw: str, parsed: ParsedStep) -> bool:
    stripped = raw.strip()
    if not (stripped.startswith("{") and stripped.endswith("}")):
        return False
    try:
        return bool(json.loads(stripped) == json.loads(parsed.canonical))
    except ValueError:
        return False


def _text_raw_is_clean(raw: str, parsed: ParsedStep) -> bool:
    return raw.strip() == parsed.canonical


JSON_STEPS = StepFormat(
    name="json",
    system_prompt="step_system",
    invalid_prompt="invalid_step",
    schema=STEP_SCHEMA,
    regex=None,
    parse=parse_step,
    repair=repair_truncated,
    fields=StepFieldStream,
    keep_raw=_json_raw_is_clean,
)

TEXT_STEPS = StepFormat(
    name="text",
    system_prompt="text_step_system",
    invalid_prompt="invalid_text_step",
    schema=None,
    regex=TEXT_STEP_REGEX,
    parse=parse_text_step,
    repair=repair_text_step,
    fields=TextFieldStream,
    keep_raw=_text_raw_is_clean,
)
