"""Draw the conversation: each turn's question, its thinking and its answer.

A turn that has ended is always drawn from a :class:`ChainRecord` by :func:`turn`, the same
function for a chain that just ended and for one reopened from the history, so the two look
exactly alike: the steps folded into a "Thought for N s · K steps" section, the answer under
it.  A turn that runs is drawn from its live view by :func:`running`, the thinking open while
it happens.  All model text passes through :mod:`thinkchain.ui.markdown`.
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from thinkchain.chain.events import ChainError
from thinkchain.chain.run_view import RunView
from thinkchain.chain.text import format_seconds
from thinkchain.history import INTERRUPTED, RUNNING, ChainRecord, Conversation
from thinkchain.history import conversation_json as to_json
from thinkchain.history import conversation_markdown as to_markdown
from thinkchain.ui import steps
from thinkchain.ui.markdown import safe_label, safe_markdown
from thinkchain.ui.texts import has_text

Translate = Callable[..., str]


# -- a turn that has ended ------------------------------------------------------------------


def turn(record: ChainRecord, t: Translate, *, vote: RunView | None = None) -> None:
    """One question and its answer (with the direct answer beside it, when compared).
    ``vote``: the strategy's run the chain was chosen by, while the page still has it."""
    with st.chat_message("user"):
        question(record.question)
    with st.chat_message("assistant"):
        if record.paired is None:
            reply(record, t, vote=vote)
            return
        left, right = st.columns([3, 2], gap="large")
        with left:
            reply(record, t, vote=vote)
        with right:
            direct_answer(record.paired, t)


def question(text: str) -> None:
    st.markdown(safe_markdown(text))


def reply(record: ChainRecord, t: Translate, *, vote: RunView | None = None) -> None:
    """The chain's answer: its thinking folded away, then the answer and what it took."""
    if record.steps or vote is not None:
        thought(record, t, vote)
    if record.status == INTERRUPTED:
        st.warning(t("interrupted"))
    elif record.status == RUNNING:
        st.info(t("still_running"))
    if record.error is not None:
        error(record.error, t)
    if record.answer is not None:
        answer(record.answer.text)
    if record.status != RUNNING:
        totals(record, t)


def thought(record: ChainRecord, t: Translate, vote: RunView | None = None) -> None:
    """The folded 'Thought for N s · K steps' section that opens to every step."""
    seconds = format_seconds(sum(item.seconds for item in record.steps))
    count = len(record.steps)
    label = t("thought_one" if count == 1 else "thought", seconds=seconds, steps=count)
    failed = record.error is not None and record.error.kind != "cancelled"
    with st.status(label, state="error" if failed else "complete", expanded=False):
        if vote is not None:
            samples(vote, t)
        for item in record.steps:
            steps.step(item, t)


def answer(text: str, *, streaming: bool = False) -> None:
    st.markdown(safe_markdown(text) + (steps.CURSOR if streaming else ""))


def error(err: ChainError, t: Translate) -> None:
    """An error where the chain stopped, below the steps it kept."""
    if err.kind == "cancelled":
        st.warning(t("stopped"))
        return
    key = f"error_{err.kind}" if has_text("en", f"error_{err.kind}") else "error_other"
    message = safe_label(err.message + (f" ({err.server})" if err.server else ""))
    st.error(t(key, message=message))


def totals(record: ChainRecord, t: Translate) -> None:
    usage = record.total_usage
    parts = [
        t("total_time", seconds=format_seconds(record.thinking_seconds)),
        t(
            "totals_one" if len(record.steps) == 1 else "totals",
            steps=len(record.steps),
            tokens=f"{usage.completion_tokens:,}",
            model=safe_label(record.model or record.backend),
        ),
    ]
    # Why a chain may have fewer steps than asked for, or took longer than expected.
    if record.stats.get("repeated_steps"):
        parts.append(t("repeated", count=record.stats["repeated_steps"]))
    if record.stats.get("hit_step_limit"):
        parts.append(t("step_limit"))
    if record.stats.get("retries"):
        parts.append(t("retries", count=record.stats["retries"]))
    st.caption(" · ".join(parts))


def direct_answer(record: ChainRecord, t: Translate) -> None:
    st.markdown(f"**{t('direct_heading')}**")
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


def downloads(conversation: Conversation, t: Translate, lang: str, key: str) -> None:
    """The whole conversation, as Markdown or JSON."""
    name = f"thinkchain-{conversation.id}"
    left, right, _ = st.columns([1, 1, 3])
    left.download_button(
        t("download_md"),
        to_markdown(conversation, lang),
        file_name=f"{name}.md",
        mime="text/markdown",
        key=f"{key}.md",
        on_click="ignore",
    )
    right.download_button(
        t("download_json"),
        to_json(conversation),
        file_name=f"{name}.json",
        mime="application/json",
        key=f"{key}.json",
        on_click="ignore",
    )


# -- the turn that runs ---------------------------------------------------------------------


def running(view: RunView, t: Translate) -> None:
    """The turn that runs: its thinking open as it happens, then the answer as it streams (the
    thinking folds away once the answer begins).  A strategy's chains show as a line each."""
    elapsed = format_seconds(view.elapsed())
    chain = view.shown
    if chain is None:
        label = t("status_samples", done=len(view.reads), k=view.size, elapsed=elapsed)
        with st.status(label, state="running", expanded=True):
            samples(view, t)
        return
    answering = chain.answer is not None or chain.final is not None
    if answering:
        label = t("status_answer", elapsed=elapsed)
    elif chain.current is not None:
        label = t("status_step", index=chain.current.index, elapsed=elapsed)
    else:
        label = t("status_starting")
    with st.status(label, state="running", expanded=not answering):
        if view.several:
            samples(view, t)
        for item in chain.steps:
            steps.step(item, t)
        steps.notices(chain.notices, t)
        if chain.current is not None:
            steps.partial_step(chain.current, t)
    if answering:
        text = chain.answer.text if chain.answer is not None else ""
        answer(text, streaming=chain.final is None)


def running_direct(view: RunView, t: Translate) -> None:
    st.markdown(f"**{t('direct_heading')}**")
    chain = view.chains[0]
    if chain.answer is not None and chain.answer.text:
        st.markdown(safe_markdown(chain.answer.text) + steps.CURSOR)
    st.status(t("status_direct", elapsed=format_seconds(view.elapsed())), state="running")


def samples(view: RunView, t: Translate) -> None:
    """A strategy's chains: each one's progress or answer, then the decision."""
    read = {r.chain: r for r in view.reads}
    for index, chain in enumerate(view.chains):
        done = read.get(index)
        error = chain.error or (done.result.error if done is not None else None)
        if done is not None and done.result.answer is not None:
            text = safe_label(done.result.answer.text)
            line = t("sample_done", index=index + 1, answer=text)
        elif error is not None:
            line = t("sample_failed", index=index + 1, reason=safe_label(error.kind))
        else:
            line = t("sample_running", index=index + 1, steps=len(chain.steps) + 1)
        st.markdown("- " + line)
    decision = view.decision
    if decision is not None:
        if decision.winner is None:
            st.caption(t("vote_none"))
        else:
            counts = ", ".join(
                f"{safe_label(answer)} × {count}"
                for answer, count in sorted(decision.counts.items(), key=lambda kv: -kv[1])
            )
            st.caption(t("vote_line", voters=decision.voters, counts=counts))
