"""A chain as a Markdown document or a JSON document, for downloads and ``history export``."""

from __future__ import annotations

import json
import time

from .record import COMPLETED, ChainRecord

_LABELS = {
    "en": {
        "question": "Question",
        "step": "Step",
        "answer": "Final answer",
        "direct": "Direct answer (no reasoning)",
        "total": "Total thinking time",
        "steps": "steps",
        "tokens": "tokens",
        "status": "status",
        "error": "Error",
        "no_answer": "No final answer.",
    },
    "zh": {
        "question": "问题",
        "step": "步骤",
        "answer": "最终答案",
        "direct": "直接回答(不推理)",
        "total": "总思考时间",
        "steps": "步",
        "tokens": "个词元",
        "status": "状态",
        "error": "错误",
        "no_answer": "没有最终答案。",
    },
}


def format_seconds(seconds: float) -> str:
    return f"{seconds:.2f} s" if seconds < 60 else f"{int(seconds // 60)} min {seconds % 60:.0f} s"


def to_json(record: ChainRecord) -> str:
    return json.dumps(record.to_dict(), ensure_ascii=False, indent=2) + "\n"


def to_markdown(record: ChainRecord, lang: str = "en") -> str:
    """The chain as a Markdown document: the question, each step, the answer, the times."""
    t = _LABELS.get(lang, _LABELS["en"])
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(record.created_at))
    meta = [when, record.model or record.backend, record.mode]
    if record.status != COMPLETED:
        meta.append(f"{t['status']}: {record.status}")
    if record.id:
        meta.append(f"id {record.id}")
    out = [
        f"# {t['question']}",
        "",
        _quote(record.question),
        "",
        f"*{' · '.join(m for m in meta if m)}*",
    ]
    for step in record.steps:
        out += ["", f"## {t['step']} {step.index}: {step.title}", "", step.content.strip(), ""]
        out.append(
            f"*{format_seconds(step.seconds)} · {step.usage.completion_tokens} {t['tokens']}*"
        )
    out += ["", f"## {t['answer']}", ""]
    out.append(record.answer.text.strip() if record.answer else f"*{t['no_answer']}*")
    if record.error is not None:
        out += ["", f"**{t['error']}:** {record.error}"]
    usage = record.total_usage
    out += [
        "",
        f"**{t['total']}: {format_seconds(record.thinking_seconds)}** · "
        f"{len(record.steps)} {t['steps']} · {usage.completion_tokens:,} {t['tokens']}",
    ]
    direct = record.paired
    if direct is not None:
        out += ["", f"## {t['direct']}", ""]
        out.append(direct.answer.text.strip() if direct.answer else f"*{t['no_answer']}*")
        if direct.error is not None:
            out += ["", f"**{t['error']}:** {direct.error}"]
        out += ["", f"*{format_seconds(direct.thinking_seconds)}*"]
    return "\n".join(out) + "\n"


def _quote(text: str) -> str:
    return "\n".join(f"> {line}" if line else ">" for line in text.strip().splitlines())
