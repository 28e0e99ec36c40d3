"""The sidebar: page language, model, chain settings, and the list of past conversations."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import streamlit as st
from pydantic import ValidationError

from thinkchain.chain.settings import (
    DEFAULT_MODE,
    ENV_MODE,
    MODES,
    STRATEGIES,
    ChainSettings,
    StrategySettings,
    auto_tools,
)
from thinkchain.history import Conversation
from thinkchain.models.backends.factory import BackendConfig, url_list
from thinkchain.ui.backend_choice import (
    DEMO,
    EMBEDDED,
    SERVER,
    embedded_config,
    embedded_option,
    embedded_options,
    kinds,
)
from thinkchain.ui.markdown import safe_label
from thinkchain.ui.texts import LANGUAGES, has_text

Translate = Callable[..., str]

# The conversation to show next: an id from the history list, or "" for a new one.
OPEN_KEY = "tc.open"

# Material icons ship with Streamlit, so they show in any browser (emoji need a font).
_STATUS_ICONS = {
    "completed": ":material/check_circle:",
    "running": ":material/hourglass_top:",
    "cancelled": ":material/stop_circle:",
    "interrupted": ":material/content_cut:",
}
_FAILED_ICON = ":material/error:"


@dataclass(frozen=True)
class PageSettings:
    backend: BackendConfig | None  # None when the choice is incomplete (a server without URL)
    backend_problem: str | None  # why ``backend`` is None, for the user
    chain: ChainSettings | None  # None when the values do not go together
    problem: str | None  # why ``chain`` is None
    strategy: StrategySettings = field(default_factory=StrategySettings)  # one chain, or more
    compare: bool = False  # also ask for a direct answer, shown beside the chain


def language() -> str:
    """The page language: chosen in the sidebar, first guessed from the browser."""
    if "tc.ui_lang" not in st.session_state:
        locale = getattr(st.context, "locale", None) or ""
        st.session_state["tc.ui_lang"] = "zh" if str(locale).lower().startswith("zh") else "en"
    choice = st.sidebar.radio(
        "Language · 语言",
        options=list(LANGUAGES),
        format_func=LANGUAGES.__getitem__,
        horizontal=True,
        key="tc.ui_lang",
    )
    return str(choice)


def _bounds(name: str) -> tuple[Any, Any, Any]:
    """A setting's lower bound, upper bound and default, as ChainSettings declares them."""
    info = ChainSettings.model_fields[name]
    low = high = None
    for rule in info.metadata:
        low = getattr(rule, "ge", low)
        high = getattr(rule, "le", high)
    return low, high, info.default


def settings(t: Translate, start: BackendConfig) -> PageSettings:
    side = st.sidebar
    side.header(t("settings"))
    offered = kinds()
    labels = {EMBEDDED: t("backend_embedded"), SERVER: t("backend_server"), DEMO: t("backend_demo")}
    kind = side.radio(
        t("backend"),
        offered,
        index=offered.index(start.kind) if start.kind in offered else 0,
        format_func=labels.__getitem__,
        key="tc.backend",
    )
    backend: BackendConfig | None = BackendConfig(demo=True)
    backend_problem = None
    if kind == EMBEDDED:
        options = embedded_options()
        first = embedded_option(start) if start.kind == EMBEDDED else options[0]
        embedded = side.selectbox(
            t("embedded_model"),
            options,
            index=options.index(first) if first in options else 0,
            key="tc.embedded",
        )
        backend = embedded_config(str(embedded))
    elif kind == SERVER:
        url = side.text_input(
            t("server_url"),
            value=",".join(start.base_urls),
            help=t("server_url_help"),
            key="tc.url",
        )
        model = side.text_input(
            t("server_model"), value=start.model or "", help=t("server_model_help"), key="tc.model"
        )
        key = side.text_input(
            t("api_key"), value=start.api_key or "", type="password", key="tc.key"
        )
        urls = url_list(url)
        backend = BackendConfig(base_urls=urls, model=model.strip() or None, api_key=key or None)
        if not urls:
            backend, backend_problem = None, t("server_url_missing")

    # Modes come from the chain's settings; one added later shows by its name until translated.
    mode_labels = {m: t(f"mode_{m}") if has_text("en", f"mode_{m}") else m for m in MODES}
    mode = side.selectbox(
        t("mode"),
        MODES,
        index=MODES.index(launch_mode()),
        format_func=mode_labels.__getitem__,
        key="tc.mode",
    )
    strategy = side.radio(
        t("strategy"),
        list(STRATEGIES),
        format_func=lambda v: t(f"strategy_{v}"),
        key="tc.strategy",
    )
    k = StrategySettings().k
    if strategy != "chain":
        k = int(side.number_input(t("k_samples"), 2, 9, k, help=t("k_samples_help"), key="tc.k"))
    plan = StrategySettings(strategy=strategy, k=k)
    compare = bool(side.toggle(t("compare"), help=t("compare_help"), key="tc.compare"))
    # Starts as the CLI's default does: on for the embedded model where the sandbox holds.
    code = side.toggle(
        t("code_steps"),
        value=bool(auto_tools(embedded=kind == EMBEDDED)),
        help=t("code_steps_help"),
        key="tc.tools",
    )
    low, high, default = _bounds("temperature")
    temperature = side.slider(
        t("temperature"), float(low), float(high), float(default), 0.05, key="tc.temperature"
    )
    low, high, default = _bounds("min_steps")
    min_steps = side.number_input(t("min_steps"), low, high, default, key="tc.min_steps")
    low, high, default = _bounds("max_steps")
    max_steps = side.number_input(t("max_steps"), low, high, default, key="tc.max_steps")
    low, high, default = _bounds("max_tokens_per_step")
    max_tokens = side.number_input(
        t("max_tokens"), low, high, default, step=100, key="tc.max_tokens"
    )
    langs = ["auto", "en", "zh"]
    lang = side.selectbox(
        t("reasoning_lang"), langs, format_func=lambda v: t(f"lang_{v}"), key="tc.lang"
    )
    with side.expander(t("budgets")):
        total_tokens = st.number_input(t("max_total_tokens"), 0, None, 0, 100, key="tc.budget_t")
        seconds = st.number_input(t("max_seconds"), 0, None, 0, 10, key="tc.budget_s")
    try:
        chain = ChainSettings(
            mode=mode,
            temperature=temperature,
            min_steps=int(min_steps),
            max_steps=int(max_steps),
            max_tokens_per_step=int(max_tokens),
            final_max_tokens=max(int(max_tokens), _bounds("final_max_tokens")[2]),
            lang=lang,
            max_total_tokens=int(total_tokens) or None,
            max_seconds=float(seconds) or None,
            tools=("python",) if code else (),
        )
    except ValidationError as err:
        problem = "; ".join(
            str(e.get("msg", "")).removeprefix("Value error, ") for e in err.errors()
        )
        return PageSettings(backend, backend_problem, None, problem, plan, compare)
    return PageSettings(backend, backend_problem, chain, None, plan, compare)


def history(
    t: Translate,
    conversations: list[Conversation] | None,
    problem: str | None,
    *,
    current: str = "",
) -> None:
    """A new conversation, and the past ones (the newest first), each by its first question;
    ``current``: the id of the one on the page, which stands out."""
    side = st.sidebar
    side.header(t("history"))
    side.button(
        t("new_chat"),
        key="tc.new",
        on_click=_open,
        args=("",),
        icon=":material/add:",
        width="stretch",
    )
    if problem is not None:
        side.warning(t("history_unavailable", message=safe_label(problem)))
        return
    if not conversations:
        side.caption(t("history_empty"))
        return
    for conversation in conversations:
        last = conversation.last
        if last is None:  # pragma: no cover - the store returns conversations with turns
            continue
        question = " ".join(conversation.question.split())
        short = question if len(question) <= 60 else question[:57] + "…"
        turns = len(conversation.turns)
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(last.created_at))
        about = [when, last.model, last.status]
        if turns > 1:
            short += f" · {turns}"
            about.insert(1, t("history_turns", count=turns))
        side.button(
            safe_label(short),
            key=f"tc.history.{conversation.id}",
            icon=_STATUS_ICONS.get(last.status, _FAILED_ICON),
            help=safe_label(" · ".join(part for part in about if part)),
            on_click=_open,
            args=(conversation.id,),
            type="secondary" if current and conversation.id == current else "tertiary",
            width="stretch",
        )


def _open(conversation_id: str) -> None:
    st.session_state[OPEN_KEY] = conversation_id


def launch_mode() -> str:
    """The mode ``thinkchain ui --mode`` started the page with, else the default."""
    mode = os.environ.get(ENV_MODE, "").strip()
    return mode if mode in MODES else DEFAULT_MODE
