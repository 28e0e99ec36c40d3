"""The thinkchain web page (Streamlit), a conversation.  Run it with ``thinkchain ui``.

Each question is a turn: the chain runs on a thread of its own (see :mod:`thinkchain.ui.live`),
the page reads snapshots of it, and a fragment redraws the running turn a few times a second,
so the step being written grows on the page as the model writes it.  A follow-up question is
asked after the earlier questions and their final answers.  Stop cancels the chain at once;
any other click reruns the page without disturbing it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import streamlit as st

from thinkchain.chain.backend import Backend, BackendError
from thinkchain.chain.cancel import CancelToken
from thinkchain.chain.events import RunEvent
from thinkchain.chain.loop import Chain
from thinkchain.chain.questions import InvalidQuestion, clean_question
from thinkchain.chain.settings import ChainSettings
from thinkchain.chain.strategies import make_run
from thinkchain.history import ChainRecorder, Conversation, HistoryError, HistoryStore
from thinkchain.history.store import default_path
from thinkchain.models.embedded import ModelError
from thinkchain.ui import sidebar, view
from thinkchain.ui.backend_choice import (
    ModelMissing,
    backend_for,
    is_loaded,
    launch_config,
)
from thinkchain.ui.live import LiveRun
from thinkchain.ui.markdown import safe_label
from thinkchain.ui.texts import translator
from thinkchain.ui.turns import Chat

CHAT_KEY = "tc.chat"  # the Chat on the page
# Tests put a backend object here to drive the page with a scripted model.
TEST_BACKEND_KEY = "tc.test_backend"
REDRAW_SECONDS = 0.2


def main() -> None:
    st.set_page_config(page_title="thinkchain", page_icon="💭", layout="wide")
    lang = sidebar.language()
    t = translator(lang)
    page = sidebar.settings(t, launch_config())
    chat = _chat()
    if sidebar.OPEN_KEY in st.session_state:
        chat = _switch(str(st.session_state.pop(sidebar.OPEN_KEY)), t)
    conversations, history_problem = _history_list(chat)
    sidebar.history(t, conversations, history_problem, current=chat.id)

    st.title(t("title"))
    if chat.empty:
        st.markdown(t("description"))
    text = st.chat_input(
        t("placeholder") if chat.empty else t("follow_up"),
        key="tc.question",
        disabled=chat.running,
    )
    problem = None
    if text is not None:
        problem = _submit(chat, text, page, t)
        if problem is None:
            st.rerun()  # the input greys out while the new turn runs
    _draw(chat, t, lang)
    if problem is not None:
        st.error(problem)


def _chat() -> Chat:
    if CHAT_KEY not in st.session_state:
        st.session_state[CHAT_KEY] = Chat()
    chat: Chat = st.session_state[CHAT_KEY]
    return chat


# -- starting, stopping, switching ----------------------------------------------------------


def _submit(chat: Chat, text: str, page: sidebar.PageSettings, t: Any) -> str | None:
    """Start the next turn; what stops it from starting, for the user, or None."""
    if page.chain is None:
        return t("settings_invalid", message=safe_label(page.problem or ""))
    settings = page.chain
    try:
        clean_question(text, settings.max_question_chars)
    except InvalidQuestion as err:
        return t(f"question_{err.reason}", length=err.length, limit=err.limit)
    backend, problem = _backend(page, t)
    if backend is None:
        return problem
    chat.stop()
    context = chat.context()
    describe = page.backend.describe() if page.backend is not None else ""
    main = make_run(backend, settings, page.strategy)
    run = _start(
        text,
        lambda cancel: main.stream(text, context=context, cancel=cancel),
        describe,
        settings,
        conversation=chat.id,
    )
    direct = None
    if page.compare:
        plain = Chain(backend, settings, mode="direct")
        direct = _start(
            text,
            lambda cancel: plain.stream(text, context=context, cancel=cancel),
            describe,
            plain.settings,
            conversation=run.conversation,
            paired_with=run.chain_id,
        )
    chat.ask(run, direct)
    return None


def _start(
    text: str,
    events: Callable[[CancelToken], Iterator[RunEvent]],
    backend: str,
    settings: ChainSettings,
    *,
    conversation: str,
    paired_with: str | None = None,
) -> LiveRun:
    """``conversation``: "" for the first question, whose chain's id then names it."""
    recorder = ChainRecorder(
        _history_path(),
        backend=backend,
        source="ui",
        settings=settings,
        paired_with=paired_with,
        conversation=conversation or None,
    )
    return LiveRun(text, events, recorder, backend=backend, settings=settings.model_dump()).start()


def _backend(page: sidebar.PageSettings, t: Any) -> tuple[Backend | None, str | None]:
    """The backend of the sidebar's choice, or None and why not."""
    injected = st.session_state.get(TEST_BACKEND_KEY)
    if injected is not None:
        return injected, None
    choice = page.backend
    if choice is None:
        return None, page.backend_problem
    try:
        if is_loaded(choice):
            return backend_for(choice), None
        with st.spinner(t("loading_model")):
            return backend_for(choice), None
    except ModelMissing as err:
        return None, t("model_missing", name=err.name, alias=err.alias)
    except (ModelError, BackendError, ValueError, OSError) as err:
        return None, t("backend_failed", message=safe_label(str(err)))


def _stop() -> None:
    """Stop button: cancel the running turn; its finished steps stay."""
    _chat().stop()


def _switch(conversation_id: str, t: Any) -> Chat:
    """Show another conversation ("" for a new one); a turn still running is stopped first."""
    _chat().stop()
    chat = Chat()
    if conversation_id:
        try:
            with HistoryStore(_history_path()) as store:
                found = store.conversation(conversation_id)
        except HistoryError as err:
            st.error(t("history_unavailable", message=safe_label(str(err))))
            found = None
        if found is not None:
            chat = Chat.reopened(found)
    st.session_state[CHAT_KEY] = chat
    return chat


# -- drawing --------------------------------------------------------------------------------


def _draw(chat: Chat, t: Any, lang: str) -> None:
    if chat.from_history and chat.turns:
        first = chat.turns[0]
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(first.created_at))
        model = safe_label(first.model or first.backend)
        st.caption(t("history_opened", when=when, model=model))
    for record in chat.turns:
        view.turn(record, t)
    if chat.run is not None and chat.running:
        with st.chat_message("user"):
            view.question(chat.run.question)
        with st.chat_message("assistant"):
            st.button(t("stop"), key="tc.stop", on_click=_stop, icon=":material/stop_circle:")
            _live(t)
        return
    _show_last(chat, t)
    if not chat.empty:
        conversation = chat.conversation()
        key = f"tc.dl.{conversation.id}.{len(conversation.turns)}"
        view.downloads(conversation, t, lang, key=key)


@st.fragment(run_every=REDRAW_SECONDS)
def _live(t: Any) -> None:
    """Redraws the running turn; once everything has ended, the whole page redraws."""
    chat = _chat()
    if chat.run is None:
        return
    if not chat.running:
        st.rerun(scope="app")
    # The chain is drawn as running until its thread ends (history written): the finished turn
    # is drawn once, by the whole page, so nothing a user opens in it is redrawn closed.
    if chat.direct is None:
        view.running(chat.run.snapshot(), t)
        return
    left, right = st.columns([3, 2], gap="large")
    with left:
        view.running(chat.run.snapshot(), t)
    with right:
        record = chat.direct.record()
        if record is None:
            view.running_direct(chat.direct.snapshot(), t)
        else:
            view.direct_answer(record, t)


def _show_last(chat: Chat, t: Any) -> None:
    """The turn asked last, once it has ended, and whether the history could keep it."""
    record = chat.last()
    if record is None or chat.run is None:
        return
    snapshot = chat.run.snapshot()
    view.turn(record, t, vote=snapshot if snapshot.several else None)
    runs = [run for run in (chat.run, chat.direct) if run is not None]
    for problem in {run.history_error for run in runs} - {None}:
        st.warning(t("history_not_saved", message=safe_label(str(problem))))


# -- history --------------------------------------------------------------------------------


def _history_path() -> str:
    return str(default_path())


def _history_list(chat: Chat) -> tuple[list[Conversation] | None, str | None]:
    """The conversations to list, the newest first: a new one is listed as soon as its first
    question is asked, though the history may not have recorded it yet (the page is not
    redrawn until the chain ends, only the running turn is)."""
    try:
        with HistoryStore(_history_path()) as store:
            conversations = store.conversations(limit=30)
    except HistoryError as err:
        return None, str(err)
    pending = chat.pending()
    if pending is not None and all(c.id != pending.id for c in conversations):
        conversations.insert(0, pending)
    return conversations, None


if __name__ == "__main__":
    main()
