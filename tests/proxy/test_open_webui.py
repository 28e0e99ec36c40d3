"""Open WebUI, the chat app most people put in front of a local model, in real headless Chromium.

Open WebUI (from PyPI, in its own virtualenv: ``make open-webui``) talks to the proxy as an
OpenAI connection.  A user picks the reasoning variant and asks: the steps show in Open WebUI's
collapsible thought, live while they stream, and are still there after a reload.  Open WebUI
also sends background tasks (chat title, tags, follow-up suggestions) to the chat's model;
its *Task Model* setting (``TASK_MODEL_EXTERNAL``, Admin Panel > Settings > Interface) sends
them to the plain model instead, so a message costs one chain, not four.  Both are shown:
tasks on the plain model with the setting, on the reasoning variant without it.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from thinkchain.testing.fake_openai import FakeOpenAIServer, FakeReply, default_responder

from .conftest import ServerThread
from .helpers import wait_until, wants_step

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
OPEN_WEBUI = Path(os.environ.get("THINKCHAIN_OPEN_WEBUI_VENV", ROOT / ".owui-venv"))
CHROMIUM = "/usr/bin/chromium"
VARIANT = "fake-model-thinkchain"
QUESTION = "What is 6 * 7?"


class Recorder:
    """ASGI wrapper that notes the path and model of every POST the proxy receives."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.calls: list[tuple[str, str | None]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        parts, more = [], True
        while more:
            message = await receive()
            parts.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(parts)
        try:
            model = json.loads(body).get("model")
        except (ValueError, AttributeError):
            model = None
        self.calls.append((scope["path"], model))
        sent = False

        async def replay() -> Any:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def chats(self, model: str) -> int:
        return sum(1 for path, m in self.calls if path == "/v1/chat/completions" and m == model)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def open_webui_command() -> Path:
    command = OPEN_WEBUI / "bin" / "open-webui"
    if not command.exists():
        message = f"Open WebUI is not installed in {OPEN_WEBUI}: run make open-webui"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI installs it: missing there is a failure, not a skip
        pytest.skip(message)
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: make system-deps")
    return command


def slow_steps(body: dict[str, Any]) -> Any:
    """Steps that take a moment each, so the page can be seen thinking."""
    if wants_step(body):
        return FakeReply(str(default_responder(body)), chunk_size=4, delay=0.03)
    return FakeReply("The answer is 42.", delay=0.02)


@pytest.fixture
def upstream() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(responder=slow_steps) as fake:
        yield fake


@pytest.fixture
def recorded_proxy(upstream: FakeOpenAIServer) -> Iterator[tuple[ServerThread, Recorder]]:
    from thinkchain.proxy import ProxySettings, create_app

    from .conftest import FAST_CHAIN

    recorder = Recorder(create_app(ProxySettings(upstreams=(upstream.url,), chain=FAST_CHAIN)))
    server = ServerThread(recorder).start()
    yield server, recorder
    server.stop()


@pytest.fixture
def start_open_webui(open_webui_command: Path, tmp_path: Path) -> Iterator[Callable[..., str]]:
    processes: list[subprocess.Popen[bytes]] = []

    def start(proxy_url: str, **settings: str) -> str:
        port = free_port()
        data = tmp_path / f"open-webui-{port}"
        data.mkdir()
        env = {
            **os.environ,
            "DATA_DIR": str(data),
            "WEBUI_SECRET_KEY": "thinkchain-test-secret",
            "WEBUI_AUTH": "False",  # one user, no sign-in page
            "OPENAI_API_BASE_URL": f"{proxy_url}/v1",
            "OPENAI_API_KEY": "no-key",
            "ENABLE_OLLAMA_API": "False",
            # Nothing from the internet: no model hub, no version check, no telemetry.
            "OFFLINE_MODE": "True",
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "RAG_EMBEDDING_MODEL_AUTO_UPDATE": "False",
            "ANONYMIZED_TELEMETRY": "False",
            "DO_NOT_TRACK": "True",
            "SCARF_NO_ANALYTICS": "True",
            **settings,
        }
        log = (data / "open-webui.log").open("wb")
        process = subprocess.Popen(
            [str(open_webui_command), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            cwd=data,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        processes.append(process)
        url = f"http://127.0.0.1:{port}"

        def up() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"Open WebUI exited; see {data / 'open-webui.log'}")
            try:
                return httpx.get(f"{url}/health", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(up, "Open WebUI to start", timeout=300)
        return url

    yield start
    for process in processes:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def browser(open_webui_command: Path) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        browser.close()


def ask(browser: Any, url: str, question: str) -> Any:
    """A new chat on the reasoning variant, as a user starts one; the page it is on.

    Each Open WebUI gets a browser of its own: its sign-in cookie is per host, not per port.
    """
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.goto(url, wait_until="load")
    page.locator("#chat-input").wait_for(timeout=120_000)
    whats_new = page.get_by_text("Okay, Let's Go!")
    if whats_new.count():
        whats_new.click()
    page.get_by_label(re.compile("^Selected model")).first.click()
    page.get_by_placeholder("Search a model").fill(VARIANT)
    page.get_by_text(VARIANT, exact=True).first.click()
    page.get_by_label(f"Selected model: {VARIANT}").first.wait_for()
    page.locator("#chat-input").click()
    page.keyboard.type(question)
    page.keyboard.press("Enter")
    return page


def test_open_webui_shows_the_steps_and_its_task_model_spares_the_chains(
    recorded_proxy: tuple[ServerThread, Recorder],
    start_open_webui: Callable[..., str],
    browser: Any,
    tmp_path: Path,
) -> None:
    proxy, recorder = recorded_proxy
    # The setting the docs give: background tasks on the plain model.
    url = start_open_webui(proxy.url, TASK_MODEL_EXTERNAL="fake-model")
    page = ask(browser, url, QUESTION)

    # While the steps stream, Open WebUI shows its thought as in progress, before any answer.
    page.get_by_text(re.compile("^Thinking")).first.wait_for(timeout=60_000)
    assert "The answer is 42." not in page.locator("body").inner_text()
    page.get_by_text("The answer is 42.").first.wait_for(timeout=60_000)
    thought = page.get_by_text(re.compile(r"^Thought for \d+ seconds?")).first
    thought.wait_for()
    thought.click()  # opens the collapsible thought: the steps are inside
    page.get_by_text("Reasoning 1.").first.wait_for()
    assert page.get_by_text("Reasoning 3.").count() >= 1
    page.screenshot(path=str(tmp_path / "open-webui-thought.png"))

    # The title, tags and follow-ups come afterwards, each a request of its own.
    wait_until(lambda: recorder.chats("fake-model") >= 3, "the background tasks", timeout=120)
    assert recorder.chats(VARIANT) == 1  # one chain for one message

    # Kept: after a reload the thought is still there, steps and all.
    page.reload(wait_until="load")
    page.get_by_text("The answer is 42.").first.wait_for(timeout=60_000)
    page.get_by_text(re.compile(r"^Thought for \d+ seconds?")).first.click()
    page.get_by_text("Reasoning 2.").first.wait_for()

    # Without the setting, every task runs a chain of its own on the reasoning variant.
    before = recorder.chats(VARIANT)
    url = start_open_webui(proxy.url)
    page = ask(browser, url, QUESTION)
    page.get_by_text("The answer is 42.").first.wait_for(timeout=60_000)
    wait_until(
        lambda: recorder.chats(VARIANT) - before >= 4, "the tasks on the variant", timeout=180
    )
    assert recorder.chats(VARIANT) - before == 4
