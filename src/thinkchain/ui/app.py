"""The thinkchain web page (Streamlit).  Run it with ``thinkchain ui``.

The page draws chains and nothing else: a chain runs on a thread of its own (see
:mod:`thinkchain.ui.live`), the page reads snapshots of it, and a fragment redraws the running
part a few times a second, so the step being written grows on the page as the model writes
it.  Stop cancels the chain at once; any other click reruns the page without disturbing it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import streamlit as st

from thinkchain.backends.base import Backend, BackendError
from thinkchain.cancel import CancelToken
from thinkchain.chain import Chain
from thinkchain.events import ChainEvent
from thinkchain.history import ChainRecord, ChainRecorder, HistoryError, HistoryStore
from thinkchain.history.store import default_path
from thinkchain.models import ModelError
from thinkchain.questions import InvalidQuestion, clean_question
from thinkchain.settings import ChainSettings
from thinkchain.strategies import SelfConsistency, StrategyEvent, stream_as_chain
from thinkchain.ui import sidebar, view
from thinkchain.ui.backend_choice import (
    BackendChoice,
    ModelMissing,
    backend_for,
    is_loaded,
    launch_choice,
)
from thinkchain.ui.live import LiveRun
from thinkchain.ui.markdown import safe_label
from thinkchain.ui.texts import translator

RUN_KEY = "tc.run"  # the LiveRun of the current chain
DIRECT_KEY = "tc.direct"  # the LiveRun of the direct answer beside it, when comparing
# Tests put a backend object here to drive the page with a scripted model.
TEST_BACKEND_KEY = "tc.test_backend"
REDRAW_SECONDS = 0.2


def main() -> None:
    st.set_page_config(page_title="thinkchain", page_icon="💭", layout="wide")
    lang = sidebar.language()
    t = translator(lang)
    page = sidebar.settings(t, launch_choice())
    records, history_problem = _history_list()
    sidebar.history(t, records, history_problem)

    st.title(t("title"))
    st.markdown(t("description"))
    with st.form("tc.ask", border=False):
        text = st.text_area(t("question"), placeholder=t("placeholder"), key="tc.question")
        compare = st.toggle(t("compare"), help=t("compare_help"), key="tc.compare")
        submitted = st.form_submit_button(t("think"), type="primary")
    if submitted:
        _submit(text, bool(compare), page, t)

    opened = st.session_state.get(sidebar.OPEN_KEY)
    if opened:
        _show_opened(str(opened), t, lang)
        return
    run: LiveRun | None = st.session_state.get(RUN_KEY)
    direct: LiveRun | None = st.session_state.get(DIRECT_KEY)
    if run is None:
        return
    if run.done and (direct is None or direct.done):
        _show_finished(run, direct, t, lang)
    else:
        st.button(t("stop"), key="tc.stop", on_click=_stop, icon="⏹️")
        _live(t)


# -- starting and stopping ------------------------------------------------------------------


def _submit(text: str, compare: bool, page: sidebar.PageSettings, t: Any) -> None:
    st.session_state.pop(sidebar.OPEN_KEY, None)
    if page.chain is None:
        st.error(t("settings_invalid", message=safe_label(page.problem or "")))
        return
    settings = page.chain
    try:
        clean_question(text, settings.max_question_chars)
    except InvalidQuestion as err:
        st.error(t(f"question_{err.reason}", length=err.length, limit=err.limit))
        return
    backend = _backend(page.choice, t)
    if backend is None:
        return
    _stop()
    describe = page.choice.describe()
    if page.strategy == "sc":
        sc = SelfConsistency(backend, settings, k=page.k)
        run = _start(
            text,
            lambda cancel: stream_as_chain(sc, text, cancel=cancel),
            describe,
            settings,
            None,
            samples=page.k,
        )
    else:
        chain = Chain(backend, settings)
        run = _start(
            text, lambda cancel: chain.stream(text, cancel=cancel), describe, settings, None
        )
    st.session_state[RUN_KEY] = run
    st.session_state[DIRECT_KEY] = None
    if compare:
        direct = Chain(backend, settings, mode="direct")
        st.session_state[DIRECT_KEY] = _start(
            text,
            lambda cancel: direct.stream(text, cancel=cancel),
            describe,
            direct.settings,
            run.chain_id,
        )


def _start(
    text: str,
    events: Callable[[CancelToken], Iterator[ChainEvent | StrategyEvent]],
    backend: str,
    settings: ChainSettings,
    paired_with: str | None,
    samples: int = 0,
) -> LiveRun:
    recorder = ChainRecorder(
        _history_path(),
        backend=backend,
        source="ui",
        settings=settings,
        paired_with=paired_with,
    )
    return LiveRun(
        text, events, recorder, backend=backend, settings=settings.model_dump(), samples=samples
    ).start()


def _backend(choice: BackendChoice, t: Any) -> Backend | None:
    injected = st.session_state.get(TEST_BACKEND_KEY)
    if injected is not None:
        return injected
    if choice.kind == "server" and not choice.base_url:
        st.error(t("server_url_missing"))
        return None
    try:
        if is_loaded(choice):
            return backend_for(choice)
        with st.spinner(t("loading_model")):
            return backend_for(choice)
    except ModelMissing as err:
        st.error(t("model_missing", name=err.name, alias=err.alias))
    except (ModelError, BackendError, ValueError, OSError) as err:
        st.error(t("backend_failed", message=safe_label(str(err))))
    return None


def _stop() -> None:
    """Stop button: cancel the running chains; their finished steps stay."""
    for key in (RUN_KEY, DIRECT_KEY):
        run: LiveRun | None = st.session_state.get(key)
        if run is not None and not run.done:
            run.cancel_token.cancel()
    for key in (RUN_KEY, DIRECT_KEY):
        run = st.session_state.get(key)
        if run is not None:
            run.wait(timeout=10)


# -- drawing --------------------------------------------------------------------------------


@st.fragment(run_every=REDRAW_SECONDS)
def _live(t: Any) -> None:
    """Redraws the running chain(s); once everything has ended, the whole page redraws."""
    run: LiveRun | None = st.session_state.get(RUN_KEY)
    direct: LiveRun | None = st.session_state.get(DIRECT_KEY)
    if run is None:
        return
    if run.done and (direct is None or direct.done):
        st.rerun(scope="app")
    if direct is None:
        _live_chain(run, t)
        return
    left, right = st.columns([3, 2], gap="large")
    with left:
        _live_chain(run, t)
    with right:
        record = direct.record()
        if record is None:
            view.running_direct(direct.snapshot(), t)
        else:
            view.direct_answer(record, t)


def _live_chain(run: LiveRun, t: Any) -> None:
    record = run.record()
    if record is None:
        view.running(run.snapshot(), t)
    else:
        view.chain_body(record, t)


def _show_finished(run: LiveRun, direct: LiveRun | None, t: Any, lang: str) -> None:
    record = run.record()
    if record is None:  # pragma: no cover - a done run always has its terminal event
        return
    if direct is not None:
        record.paired = direct.record()
    snapshot = run.snapshot()
    if snapshot.k:
        view.samples(snapshot, t)
    view.finished(record, t, lang, key=f"tc.dl.{record.id}")
    for problem in {run.history_error, direct.history_error if direct else None} - {None}:
        st.warning(t("history_not_saved", message=safe_label(str(problem))))


def _show_opened(chain_id: str, t: Any, lang: str) -> None:
    try:
        with HistoryStore(_history_path()) as store:
            record = store.get(chain_id)
    except HistoryError as err:
        st.error(t("history_unavailable", message=safe_label(str(err))))
        return
    st.button(t("history_close"), key="tc.close", on_click=_close_opened, icon="↩️")
    if record is None:
        st.session_state.pop(sidebar.OPEN_KEY, None)
        return
    when = _when(record)
    st.caption(t("history_opened", when=when, model=safe_label(record.model or record.backend)))
    view.finished(record, t, lang, key=f"tc.dl.{record.id}")


def _close_opened() -> None:
    st.session_state.pop(sidebar.OPEN_KEY, None)


def _when(record: ChainRecord) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(record.created_at))


# -- history --------------------------------------------------------------------------------


def _history_path() -> str:
    return str(default_path())


def _history_list() -> tuple[list[ChainRecord] | None, str | None]:
    try:
        with HistoryStore(_history_path()) as store:
            return store.list(limit=30), None
    except HistoryError as err:
        return None, str(err)


if __name__ == "__main__":
    main()
