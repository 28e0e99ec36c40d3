"""Short texts shown with a chain's steps, in English and Chinese (the prompts' languages)."""

from __future__ import annotations

from typing import Literal

from thinkchain.chain.prompts import LANGS

LabelName = Literal["verification", "untitled_step", "step_heading"]

_LABELS: dict[str, dict[LabelName, str]] = {
    "en": {
        "verification": "Verification",
        "untitled_step": "Step {index}",
        # The title comes last, so a heading can be written before its title streams in.
        "step_heading": "Step {index}: {title}",
    },
    "zh": {
        "verification": "验证",
        "untitled_step": "第 {index} 步",
        "step_heading": "第 {index} 步：{title}",
    },
}


def label(lang: str, name: LabelName, **values: object) -> str:
    """Label ``name`` in ``lang`` ("en" or "zh"), with ``values`` filled in (e.g. ``index=3``)."""
    if lang not in LANGS:
        raise ValueError(f"no labels in language {lang!r}")
    text = _LABELS[lang][name]
    return text.format(**values) if values else text


# What stopped a failed code run, in words; "error" needs none beside the traceback.
_CODE_FAILURES: dict[str, dict[str, str]] = {
    "en": {
        "timeout": "time limit",
        "memory": "memory limit",
        "output_limit": "output limit",
        "killed": "killed",
        "sandbox_error": "sandbox unavailable",
    },
    "zh": {
        "timeout": "超时",
        "memory": "内存超限",
        "output_limit": "输出超限",
        "killed": "被终止",
        "sandbox_error": "沙箱无法运行",
    },
}
_BRACKETS = {"en": (" (", ")"), "zh": ("（", "）")}


def code_failure_detail(status: str, lang: str) -> str:
    """What goes after "Error" for a code run that ended with ``status``: " (time limit)",
    "（超时）", or nothing for a plain exception. An unknown status is shown as it is."""
    if status in ("ok", "error"):
        return ""
    lang = lang if lang in LANGS else "en"
    words = _CODE_FAILURES[lang].get(status, status)
    opening, closing = _BRACKETS[lang]
    return f"{opening}{words}{closing}"


def step_heading(index: int, title: str, lang: str) -> str:
    """The heading "Step 3: Title" in ``lang``; with an empty title, what goes before one."""
    return label(lang, "step_heading", index=index, title=title)


def has_own_title(index: int, title: str) -> bool:
    """Whether a step's title is its own, not empty and not the "Step 3" a step without a
    title is given (in either language: a history may hold both)."""
    title = title.strip()
    return bool(title) and all(title != label(lang, "untitled_step", index=index) for lang in LANGS)


def may_be_untitled(index: int, title_so_far: str) -> bool:
    """Whether a title still streaming could turn out to be only "Step 3": a heading that
    shows it waits until it cannot."""
    title = title_so_far.strip()
    return any(label(lang, "untitled_step", index=index).startswith(title) for lang in LANGS)


def finished_step_heading(index: int, title: str, lang: str) -> str:
    """The heading of a finished step: "Step 3: Title", or "Step 3" alone for a step without
    a title of its own (never "Step 3: Step 3")."""
    if has_own_title(index, title):
        return step_heading(index, title, lang)
    return label(lang, "untitled_step", index=index)
