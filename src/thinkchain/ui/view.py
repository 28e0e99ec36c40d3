"""Draw chains: a finished one (live or from the history) and one that is still running.

A chain that has ended is always drawn from a :class:`ChainRecord` by :func:`finished`, the
same function for a chain that just ended and for one reopened from the history, so the two
look exactly alike.  All model text passes through :mod:`thinkchain.ui.markdown`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import streamlit as st

from ..events import ChainError, Step
from ..history import INTERRUPTED, RUNNING, ChainRecord, to_json, to_markdown
from ..history.export import format_seconds
from .live import ChainView, Notice
from .markdown import safe_label, safe_markdown
from .texts import has_text

Translate = Callable[..., str]


# -- pieces ---------------------------------------------------------------------------------


def question(text: str) -> None:
    st.markdown("\n".join(f"> {line}" for line in safe_markdown(text).split("\n")))


def step(item: Step, t: Translate) -> None:
    label = t("step_heading", index=item.index, title=safe_label(item.title))
    with st.expander(label, expanded=True):
        st.markdown(safe_markdown(item.content))
        meta = t(
            "step_meta", seconds=format_seconds(item.seconds), tokens=item.usage.completion_tokens
        )
        if item.attempts > 1:
            meta += " · " + t("step_attempts", attempts=item.attempts)
        for note in item.notes:
            meta += " · " + safe_label(note)
        st.caption(meta)


def partial_step(index: int, title: str, content: str, t: Translate) -> None:
    if title.strip():
        label = t("step_heading", index=index, title=safe_label(title) + " …")
    else:
        label = t("step_untitled", index=index) + " …"
    with st.expander(label, expanded=True):
        st.markdown(safe_markdown(content) + " ▌")
        st.caption(t("step_writing"))


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


def answer(text: str, t: Translate, *, streaming: bool = False) -> None:
    st.subheader(t("final_answer"))
    st.markdown(safe_markdown(text) + (" ▌" if streaming else ""))


def error(err: ChainError, t: Translate) -> None:
    """An error where the chain stopped, below the steps it kept."""
    if err.kind == "cancelled":
        st.warning(t("stopped"))
        return
    key = f"error_{err.kind}" if has_text("en", f"error_{err.kind}") else "error_other"
    message = safe_label(err.message + (f" ({err.server})" if err.server else ""))
    st.error(t(key, message=message))


def totals(record: ChainRecord, t: Translate) -> None:
    st.markdown(f"**{t('total_time', seconds=format_seconds(record.thinking_seconds))}**")
    usage = record.total_usage
    line = t(
        "totals_one" if len(record.steps) == 1 else "totals",
        steps=len(record.steps),
        tokens=f"{usage.completion_tokens:,}",
        model=safe_label(record.model or record.backend),
    )
    # Why a chain may have fewer steps than asked for, or took longer than expected.
    if record.stats.get("repeated_steps"):
        line += " · " + t("repeated", count=record.stats["repeated_steps"])
    if record.stats.get("hit_step_limit"):
        line += " · " + t("step_limit")
    if record.stats.get("retries"):
        line += " · " + t("retries", count=record.stats["retries"])
    st.caption(line)


def downloads(record: ChainRecord, t: Translate, lang: str, key: str) -> None:
    name = f"thinkchain-{record.id or time.strftime('%Y%m%d-%H%M%S')}"
    left, right, _ = st.columns([1, 1, 3])
    left.download_button(
        t("download_md"),
        to_markdown(record, lang),
        file_name=f"{name}.md",
        mime="text/markdown",
        key=f"{key}.md",
        on_click="ignore",
    )
    right.download_button(
        t("download_json"),
        to_json(record),
        file_name=f"{name}.json",
        mime="application/json",
        key=f"{key}.json",
        on_click="ignore",
    )


# -- whole chains ---------------------------------------------------------------------------


def finished(record: ChainRecord, t: Translate, lang: str, *, key: str) -> None:
    """A chain that has ended (or, from the history, one that never will), and its direct
    answer beside it when it was compared with one."""
    if record.paired is not None:
        left, right = st.columns([3, 2], gap="large")
        with left:
            chain_body(record, t)
        with right:
            direct_answer(record.paired, t)
    else:
        chain_body(record, t)
    downloads(record, t, lang, key)


def chain_body(record: ChainRecord, t: Translate) -> None:
    question(record.question)
    for item in record.steps:
        step(item, t)
    if record.status == INTERRUPTED:
        st.warning(t("interrupted"))
    elif record.status == RUNNING:
        st.info(t("still_running"))
    if record.error is not None:
        error(record.error, t)
    if record.answer is not None:
        answer(record.answer.text, t)
    if record.status != RUNNING:
        totals(record, t)


def direct_answer(record: ChainRecord, t: Translate) -> None:
    st.subheader(t("direct_heading"))
    if record.answer is not None:
        st.markdown(safe_markdown(record.answer.text))
        st.caption(
            t(
                "direct_meta",
                seconds=format_seconds(record.thinking_seconds),
                tokens=record.answer.usage.completion_tokens,
            )
        )
    if record.error is not None:
        error(record.error, t)


def samples(view: ChainView, t: Translate) -> None:
    """Self-consistency: each chain's progress or answer, then the vote."""
    for sample in view.samples:
        if sample.answer is not None:
            line = t("sample_done", index=sample.index, answer=safe_label(sample.answer))
        elif sample.failed is not None:
            line = t("sample_failed", index=sample.index, reason=safe_label(sample.failed))
        else:
            line = t("sample_running", index=sample.index, steps=sample.steps + 1)
        st.markdown("- " + line)
    if view.vote is not None:
        if view.vote.winner is None:
            st.caption(t("vote_none"))
        else:
            counts = ", ".join(
                f"{safe_label(answer)} × {count}"
                for answer, count in sorted(view.vote.counts.items(), key=lambda kv: -kv[1])
            )
            st.caption(t("vote_line", voters=view.vote.voters, counts=counts))


def running(view: ChainView, t: Translate) -> None:
    """A chain that is still running: finished steps, the step being written, the status."""
    if view.k and view.vote is None:
        question(view.question)
        samples(view, t)
        done = sum(1 for s in view.samples if s.answer is not None or s.failed is not None)
        label = t("status_samples", done=done, k=view.k, elapsed=format_seconds(view.elapsed()))
        st.status(label, state="running")
        return
    question(view.question)
    for item in view.steps:
        step(item, t)
    notices(view.notices, t)
    if view.current is not None:
        partial_step(view.current.index, view.current.title, view.current.content, t)
    if view.answering or view.answer is not None:
        answer(view.answer_text, t, streaming=view.answer is None)
    elapsed = format_seconds(view.elapsed())
    if view.answering:
        label = t("status_answer", elapsed=elapsed)
    elif view.current is not None:
        label = t("status_step", index=view.current.index, elapsed=elapsed)
    else:
        label = t("status_starting")
    st.status(label, state="running")


def running_direct(view: ChainView, t: Translate) -> None:
    st.subheader(t("direct_heading"))
    if view.answer_text:
        st.markdown(safe_markdown(view.answer_text) + " ▌")
    st.status(t("status_direct", elapsed=format_seconds(view.elapsed())), state="running")
