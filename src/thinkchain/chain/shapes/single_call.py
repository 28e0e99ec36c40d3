"""The ``direct`` and ``cot`` shapes: the baselines, one call and no steps.

``direct`` asks for the answer only; ``cot`` asks the model to think step by step and then
answer, in one reply.
"""

from __future__ import annotations

from thinkchain.chain.backend import Message
from thinkchain.chain.events import ChainStarted
from thinkchain.chain.model_calls import ModelCalls
from thinkchain.chain.prompts import prompt


async def run_single_call(calls: ModelCalls, question: str, lang: str) -> None:
    mode = calls.settings.mode
    system = "direct_system" if mode == "direct" else "cot_system"
    messages: list[Message] = calls.opening(prompt(lang, system), question, lang)
    calls.check_fits(messages)
    calls.emit(ChainStarted(question, lang, calls.backend.model, calls.result.mode))
    await calls.answer(messages, lang, ask_for_answer=False, purpose=mode)
