"""The web page on the real embedded model (the small one, to stay quick)."""

from __future__ import annotations

import time

from streamlit.testing.v1 import AppTest

from thinkchain.history import HistoryStore
from thinkchain.models import embedded as models
from thinkchain.ui import page as page_module


def test_the_page_reasons_on_the_embedded_model(small_model_path, tmp_path, monkeypatch):
    monkeypatch.setenv(models.ENV_CACHE, str(small_model_path.parent.parent))
    monkeypatch.setenv("THINKCHAIN_HISTORY", str(tmp_path / "history.sqlite3"))
    at = AppTest.from_file(page_module.__file__, default_timeout=300)
    at.run()
    at.sidebar.selectbox(key="tc.embedded").set_value("small")
    at.sidebar.number_input(key="tc.min_steps").set_value(1)
    at.sidebar.number_input(key="tc.max_steps").set_value(2)
    at.sidebar.number_input(key="tc.max_tokens").set_value(200)
    at.chat_input(key="tc.question").set_value("What is 12 + 30?")
    at.run()
    assert not at.exception and not at.main.error, [e.value for e in at.main.error]

    run = at.session_state[page_module.CHAT_KEY].run
    deadline = time.monotonic() + 600
    while not run.done:
        assert time.monotonic() < deadline
        time.sleep(0.5)
    at.run()
    assert not at.exception
    steps = [m.value for m in at.main.markdown if m.value.startswith("**Step ")]
    assert 1 <= len(steps) <= 2
    assert [s.label.startswith("Thought for ") for s in at.main.status] == [True]
    assert any(c.value.startswith("Total time: ") for c in at.main.caption)
    with HistoryStore(tmp_path / "history.sqlite3") as store:
        [record] = store.list()
    assert record.status == "completed" and record.model.startswith("qwen2.5-coder-0.5b")
