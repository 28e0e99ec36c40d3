"""Take the README's screenshot: the page answering a question, its thinking opened.

    .venv/bin/python docs/screenshot.py [OUT] [--lang en|zh] [--question Q] [--follow-up Q]
                                        [--no-compare] [--demo] [--code on|off]

Starts ``thinkchain ui`` (embedded default model, a fresh history in a temporary folder),
asks the question in headless Chromium, in English or Chinese, with "compare with a direct
answer" on, then the follow-up question if one is given, waits for each answer, opens the
steps of the last one and saves the page to OUT (docs/web-app.png).  ``--demo`` uses the
scripted demo model instead, to check the layout in seconds.  Needs Debian's chromium and
fonts-noto-cjk (``make system-deps``) and the default model (``make model``).
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from playwright.sync_api import sync_playwright

from thinkchain.ui.texts import translator

QUESTIONS = {
    "en": "How many letters r are in the word strawberry?",
    "zh": "strawberry 这个单词里有几个字母 r?",
}
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit("thinkchain ui exited")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as reply:
                if reply.read().strip() == b"ok":
                    return
        except OSError:
            time.sleep(0.5)
    sys.exit("thinkchain ui did not start")


def starts_with(t: Any, key: str, *fields: str) -> re.Pattern[str]:
    """Matches a text of the page by what comes before its first value."""
    return re.compile("^" + re.escape(t(key, **dict.fromkeys(fields, "\0")).split("\0")[0]))


def ask(page: Any, question: str, answers: int, lang: str) -> None:
    """Type the question into the chat box and wait until ``answers`` answers are on the page."""
    t = translator(lang)
    box = page.get_by_test_id("stChatInputTextArea")
    box.wait_for(timeout=60_000)
    page.wait_for_function("el => !el.disabled", arg=box.element_handle(), timeout=900_000)
    box.fill(question)
    box.press("Enter")
    done = page.get_by_text(starts_with(t, "total_time", "seconds"))
    started = time.monotonic()
    while done.count() < answers:
        if time.monotonic() - started > 900:
            sys.exit("the answer did not come within 15 minutes")
        page.wait_for_timeout(250)
    print(f"answered in {time.monotonic() - started:.0f} s: {question}")


def shoot(args: argparse.Namespace) -> None:
    t = translator(args.lang)
    question = args.question or QUESTIONS[args.lang]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    thinkchain = Path(sys.executable).parent / "thinkchain"
    command = [str(thinkchain), "ui", "--port", str(port), *(["--demo"] if args.demo else [])]
    with tempfile.TemporaryDirectory() as data:
        env = {**os.environ, "THINKCHAIN_DATA_DIR": data}
        env.pop("THINKCHAIN_HISTORY", None)
        proc = subprocess.Popen(command, env=env)
        try:
            wait_healthy(url, proc)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
                )
                locale = "zh-CN" if args.lang == "zh" else "en-US"
                page = browser.new_page(viewport={"width": 1400, "height": 1000}, locale=locale)
                page.goto(url)
                page.get_by_test_id("stChatInputTextArea").wait_for(timeout=120_000)
                if args.compare:
                    page.get_by_text(t("compare"), exact=True).click()
                if args.code is not None:
                    # The switch starts as the page chooses (on for the embedded model).
                    switch = page.get_by_label(t("code_steps"), exact=True)
                    if switch.is_checked() != (args.code == "on"):
                        page.get_by_text(t("code_steps"), exact=True).click()
                ask(page, question, 1, args.lang)
                if args.follow_up:
                    ask(page, args.follow_up, 2, args.lang)
                # The last answer's thinking, opened: the steps are what the page is about.
                page.get_by_text(starts_with(t, "thought", "seconds", "steps")).last.click()
                page.wait_for_timeout(500)
                # Streamlit scrolls inside the page: a tall window shows the whole conversation.
                height = page.evaluate(
                    "Math.max(...[...document.querySelectorAll('section, div')]"
                    ".map(e => e.scrollHeight))"
                )
                page.set_viewport_size({"width": 1400, "height": min(int(height) + 40, 4000)})
                page.wait_for_timeout(1000)
                page.screenshot(path=str(args.out))
                browser.close()
        finally:
            proc.terminate()
            proc.wait(30)
    print(f"saved {args.out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", nargs="?", type=Path, default=Path("docs/web-app.png"))
    parser.add_argument("--lang", choices=["en", "zh"], default="en", help="the page's language")
    parser.add_argument("--question", help="the first question (default: strawberry)")
    parser.add_argument("--follow-up", help="a second question, asked after the first answer")
    parser.add_argument(
        "--no-compare", dest="compare", action="store_false", help="no direct answer beside it"
    )
    parser.add_argument(
        "--code",
        choices=["on", "off"],
        help="Python code steps on or off (default: as the page starts, on for the embedded model)",
    )
    parser.add_argument("--demo", action="store_true", help="the scripted demo model, no model")
    shoot(parser.parse_args())


if __name__ == "__main__":
    main()
