"""Draw reasoning steps: a finished one, the one being written, and the code that ran in them.

A step's text is Markdown; a fenced Python block in it renders highlighted, and the output of
running that block (code steps) is drawn right under it, with its status and time.
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from thinkchain.chain.events import CodeRun, Step
from thinkchain.chain.labels import has_own_title
from thinkchain.chain.parts import Part, TextPart, step_parts
from thinkchain.chain.text import fenced, format_seconds
from thinkchain.chain.view import Notice, StepAttempt
from thinkchain.ui.markdown import safe_label, safe_markdown

Translate = Callable[..., str]

CURSOR = " ▌"  # the end of text still being written


def step(item: Step, t: Translate) -> None:
    with st.container(border=True):
        if has_own_title(item.index, item.title):
            heading = t("step_heading", index=item.index, title=safe_label(item.title))
        else:
            heading = t("step_untitled", index=item.index)
        st.markdown(f"**{heading}**")
        body(step_parts(item), None, t)
        meta = t(
            "step_meta", seconds=format_seconds(item.seconds), tokens=item.usage.completion_tokens
        )
        if item.attempts > 1:
            meta += " · " + t("step_attempts", attempts=item.attempts)
        for note in item.notes:
            meta += " · " + safe_label(note)
        st.caption(meta)


def partial_step(current: StepAttempt, t: Translate) -> None:
    title = current.title.strip()
    if has_own_title(current.index, title):
        heading = t("step_heading", index=current.index, title=safe_label(title) + " …")
    else:
        heading = t("step_untitled", index=current.index) + " …"
    with st.container(border=True):
        st.markdown(f"**{heading}**")
        body(current.parts(), current.running, t, writing=True)
        st.caption(t("step_writing"))


def body(parts: list[Part], running: str | None, t: Translate, *, writing: bool = False) -> None:
    """The step's text, each code block followed by what came of running it (or a note that
    it runs)."""
    for i, part in enumerate(parts):
        if isinstance(part, TextPart):
            text = safe_markdown(part.text)
            if writing and i == len(parts) - 1:  # the text still being written
                text += CURSOR
            if part.text.strip():
                st.markdown(text)
        elif part.run is not None:
            code_run(part.run, t)
        elif running is not None and part.code == running:
            st.caption("⏳ " + t("code_running"))


def code_run(run: CodeRun, t: Translate) -> None:
    """What running one block gave: the output under a line with its time, an error in red."""
    seconds = format_seconds(run.seconds)
    notes = [t("code_cut")] if run.truncated else []
    has_output = bool(run.output.strip())
    if run.ok and not has_output:
        notes.append(t("code_silent"))
    if run.ok or has_output:
        st.caption(" · ".join([t("code_output", seconds=seconds), *notes]))
    if has_output:
        st.markdown(safe_markdown(fenced(run.output, "text")))
    if not run.ok:
        # "error" says nothing the red box does not; a limit that stopped it ("time limit") does.
        detail = "" if run.status == "error" else t(f"code_failure_{run.status}")
        head = t("code_failed", detail=detail, seconds=seconds)
        st.error(head + "\n\n" + safe_markdown(fenced(run.error or run.status, "text")))


def notices(items: list[Notice], t: Translate) -> None:
    for notice in items:
        reason = safe_label(notice.reason)
        if notice.kind == "discarded":
            text = t("notice_discarded", index=notice.index, reason=reason)
        elif notice.target == "answer":
            text = t("notice_retry_answer", attempt=notice.attempt, reason=reason)
        else:
            text = t("notice_retry", index=notice.index, attempt=notice.attempt, reason=reason)
        st.caption("↻ " + text)
