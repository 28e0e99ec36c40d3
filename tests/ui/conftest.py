"""Fixtures for the web page: AppTest on a scripted backend, and the real page in Chromium."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from thinkchain.ui import page as page_module

APP = Path(page_module.__file__)
THINKCHAIN = Path(sys.executable).parent / "thinkchain"
CHROMIUM = "/usr/bin/chromium"
# Screenshots of the browser tests land here (ignored by git), to be looked at.
ARTIFACTS = Path(
    os.environ.get("THINKCHAIN_TEST_ARTIFACTS", Path(__file__).parents[2] / "screenshots-tmp")
)


class Page:
    """The page in AppTest, with the few gestures a user makes."""

    def __init__(self, backend: object | None) -> None:
        self.at = AppTest.from_file(str(APP), default_timeout=30)
        if backend is not None:
            self.at.session_state[page_module.TEST_BACKEND_KEY] = backend
        self.at.run()
        self.check()

    def check(self) -> None:
        assert not self.at.exception, [e.value for e in self.at.exception]

    def ask(self, question: str, *, compare: bool = False) -> Page:
        """Type into the chat box and send (with the sidebar's compare switch turned on)."""
        if compare:
            self.at.sidebar.toggle(key="tc.compare").set_value(True)
        self.at.chat_input(key="tc.question").set_value(question)
        self.at.run()
        self.check()
        return self

    def button(self, label: str):  # type: ignore[no-untyped-def]
        matches = [b for b in self.at.button if b.label == label]
        assert matches, f"no button {label!r} among {[b.label for b in self.at.button]}"
        return matches[0]

    def chat(self):  # type: ignore[no-untyped-def]
        return self.at.session_state[page_module.CHAT_KEY]

    def runs(self) -> list:  # type: ignore[type-arg]
        if page_module.CHAT_KEY not in self.at.session_state:
            return []
        chat = self.chat()
        return [run for run in (chat.run, chat.direct) if run is not None]

    def wait_until_done(self, timeout: float = 60) -> Page:
        deadline = time.monotonic() + timeout
        while not all(run.done for run in self.runs()):
            assert time.monotonic() < deadline, "the chain did not end"
            time.sleep(0.05)
        self.at.run()
        self.check()
        return self

    def wait_for(self, predicate: Callable[[Page], bool], timeout: float = 30) -> Page:
        """Rerun the page (as its timer does in a browser) until ``predicate`` holds."""
        deadline = time.monotonic() + timeout
        while True:
            self.at.run()
            self.check()
            if predicate(self):
                return self
            assert time.monotonic() < deadline, "the page never showed what was expected"
            time.sleep(0.1)

    # what is on the page
    def step_labels(self) -> list[str]:
        """The headings of the steps, in every turn, whether their section is open or not."""
        return [m.value.strip("*") for m in self.at.main.markdown if m.value.startswith("**Step ")]

    def thoughts(self) -> list[str]:
        """The labels of the turns' thinking sections ("Thought for 1.2 s · 3 steps")."""
        return [s.label for s in self.at.main.status]

    def messages(self) -> list[str]:
        """Who speaks, turn after turn: "user", "assistant", ..."""
        return [m.name for m in self.at.main.chat_message]

    def texts(self) -> list[str]:
        return [m.value for m in self.at.main.markdown]

    def captions(self) -> list[str]:
        return [c.value for c in self.at.main.caption]

    def errors(self) -> list[str]:
        return [e.value for e in self.at.main.error]

    def warnings(self) -> list[str]:
        return [w.value for w in self.at.main.warning]

    def answers_shown(self) -> int:
        """How many answers have ended: each ends with its total thinking time."""
        return sum(1 for c in self.captions() if c.startswith("Total time: "))


@pytest.fixture
def open_page() -> Callable[..., Page]:
    return Page


@pytest.fixture
def history_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "history.sqlite3"
    monkeypatch.setenv("THINKCHAIN_HISTORY", str(path))
    return path


# -- the real page in a real browser ---------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class UiServer:
    """``thinkchain ui`` as a subprocess, as a user starts it."""

    def __init__(self, args: list[str], tmp_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp_path / f"ui-{self.port}.log"
        self._log = self.log.open("wb")
        self.proc = subprocess.Popen(
            [str(THINKCHAIN), "ui", "--port", str(self.port), *args],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self._wait_healthy()

    def _wait_healthy(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"thinkchain ui exited: {self.log.read_text()}")
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as reply:
                    if reply.read().strip() == b"ok":
                        return
            except OSError:
                time.sleep(0.25)
        raise AssertionError(f"thinkchain ui did not start: {self.log.read_text()}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self._log.close()


@pytest.fixture
def start_ui(tmp_path: Path) -> Iterator[Callable[..., UiServer]]:
    servers: list[UiServer] = []

    def start(*args: str) -> UiServer:
        server = UiServer(list(args), tmp_path)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="module")
def chromium():  # type: ignore[no-untyped-def]
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `apt-get install chromium` (make system-deps)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        browser.close()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
