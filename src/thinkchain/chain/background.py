"""Earlier turns of a conversation, shown to the model as background to the new question.

A follow-up must think exactly as a first question does.  Shown as real chat turns, the
earlier question and its bare final answer are the model's own last reply, and a small model
imitates that reply's shape: it answers the follow-up in one bare sentence, skipping the
layout, the titled steps and the program.  So every shape asks with the same two messages as
for a first question (its system prompt, one user message), and the earlier turns go into that
user message, marked as background the new question may refer to ("that", "the same word").

System and developer messages of the conversation (a proxy client's instructions) stay
system messages after thinkchain's own, as they were.
"""

from __future__ import annotations

from collections.abc import Sequence

from thinkchain.chain.backend import Message
from thinkchain.chain.prompts import prompt

# The earlier turns are labelled as what they were, a question and its answer, not as chat
# speakers: "User:"/"Assistant:" lines read as a dialogue to continue, and the model answered
# the follow-up in the bare shape of the earlier answer.
_LABELS = {
    "en": {"user": "Earlier question: ", "assistant": "Its final answer: "},
    "zh": {"user": "此前的问题：", "assistant": "当时的最终答案："},
}


def _turn(message: Message, lang: str) -> str:
    label = _LABELS[lang].get(str(message["role"]), "")
    return label + str(message["content"]).strip()


def opening_messages(
    system: str, context: Sequence[Message], question: str, lang: str
) -> list[Message]:
    """The messages a chain starts from: ``system``, the conversation's own instructions, and
    one user message holding the earlier turns as background, then ``question``."""
    instructions = [m for m in context if m["role"] == "system"]
    return [
        {"role": "system", "content": system},
        *instructions,
        {"role": "user", "content": posed_question(context, question, lang)},
    ]


def posed_question(context: Sequence[Message], question: str, lang: str) -> str:
    """``question`` as the model is asked it: alone, or after the earlier turns of its
    conversation shown as background."""
    turns = [_turn(m, lang) for m in context if m["role"] != "system" and str(m["content"]).strip()]
    if not turns:
        return question
    return prompt(lang, "earlier_turns").format(turns="\n".join(turns), question=question)
