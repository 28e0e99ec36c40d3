"""A chain or a whole conversation as a Markdown or JSON document, for downloads and
``history export``."""

from __future__ import annotations

import json
import time

from thinkchain.chain.events import CodeRun
from thinkchain.chain.labels import code_failure_detail, finished_step_heading
from thinkchain.chain.text import fenced, format_seconds
from thinkchain.history.conversation import Conversation
from thinkchain.history.record import COMPLETED, ChainRecord

_LABELS = {
    "en": {
        "question": "Question",
        "answer": "Final answer",
        "direct": "Direct answer (no reasoning)",
        "total": "Total time",
        "steps": "steps",
        "tokens": "tokens",
        "status": "status",
        "error": "Error",
        "no_answer": "No final answer.",
        "output": "Output",
        "code_error": "Error",
        "output_cut": "output cut",
        "colon": ": ",
    },
    "zh": {
        "question": "问题",
        "answer": "最终答案",
        "direct": "直接回答（不推理）",
        "total": "总用时",
        "steps": "步",
        "tokens": "个词元",
        "status": "状态",
        "error": "错误",
        "no_answer": "没有最终答案。",
        "output": "输出",
        "code_error": "出错",
        "output_cut": "输出已截断",
        "colon": "：",
    },
}


def to_json(record: ChainRecord) -> str:
    return json.dumps(record.to_dict(), ensure_ascii=False, indent=2) + "\n"


def conversation_json(conversation: Conversation) -> str:
    return json.dumps(conversation.to_dict(), ensure_ascii=False, indent=2) + "\n"


def conversation_markdown(conversation: Conversation, lang: str = "en") -> str:
    """Every turn of a conversation, one after the other; a single turn reads as its chain."""
    if len(conversation.turns) == 1:
        return to_markdown(conversation.turns[0], lang)
    return "\n---\n\n".join(
        to_markdown(turn, lang, number=number)
        for number, turn in enumerate(conversation.turns, start=1)
    )


def code_run_markdown(run: CodeRun, lang: str = "en") -> list[str]:
    """A step's code run as it follows the step: status and time, the output, the error."""
    t = _LABELS.get(lang, _LABELS["en"])
    head = t["output"] if run.ok else t["code_error"]
    if not run.ok:
        head += code_failure_detail(run.status, lang)
    head += f" · {format_seconds(run.seconds)}"
    if run.truncated:
        head += f" · {t['output_cut']}"
    out = ["", f"*{head}*"]
    if run.output.strip():
        out += ["", fenced(run.output, "text")]
    if not run.ok and run.error:
        out += ["", fenced(run.error, "text")]
    return out


def to_markdown(record: ChainRecord, lang: str = "en", *, number: int | None = None) -> str:
    """The chain as a Markdown document: the question, each step, the answer, the times.
    ``number``: its place in a conversation, shown in its heading."""
    lang = lang if lang in _LABELS else "en"
    t = _LABELS[lang]
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(record.created_at))
    meta = [when, record.model or record.backend, record.mode]
    if record.status != COMPLETED:
        meta.append(f"{t['status']}{t['colon']}{record.status}")
    if record.id:
        meta.append(f"id {record.id}")
    out = [
        f"# {t['question']}" + (f" {number}" if number is not None else ""),
        "",
        _quote(record.question),
        "",
        f"*{' · '.join(m for m in meta if m)}*",
    ]
    for step in record.steps:
        out += [
            "",
            f"## {finished_step_heading(step.index, step.title, lang)}",
            "",
            step.content.strip(),
        ]
        for run in step.runs:
            out += code_run_markdown(run, lang)
        out.append("")
        out.append(
            f"*{format_seconds(step.seconds)} · {step.usage.completion_tokens} {t['tokens']}*"
        )
    out += ["", f"## {t['answer']}", ""]
    out.append(record.answer.text.strip() if record.answer else f"*{t['no_answer']}*")
    if record.error is not None:
        out += ["", f"**{t['error']}{t['colon'].strip()}** {record.error}"]
    usage = record.total_usage
    out += [
        "",
        f"**{t['total']}{t['colon']}{format_seconds(record.thinking_seconds)}** · "
        f"{len(record.steps)} {t['steps']} · {usage.completion_tokens:,} {t['tokens']}",
    ]
    direct = record.paired
    if direct is not None:
        out += ["", f"## {t['direct']}", ""]
        out.append(direct.answer.text.strip() if direct.answer else f"*{t['no_answer']}*")
        if direct.error is not None:
            out += ["", f"**{t['error']}{t['colon'].strip()}** {direct.error}"]
        out += ["", f"*{format_seconds(direct.thinking_seconds)}*"]
    return "\n".join(out) + "\n"


def _quote(text: str) -> str:
    return "\n".join(f"> {line}" if line else ">" for line in text.strip().splitlines())
