"""Take the README's screenshot: the page answering the strawberry question on the embedded model.

    .venv/bin/python docs/screenshot.py [docs/web-app.png] ["question"]

Starts ``thinkchain ui`` (embedded default model, a fresh history in a temporary folder), asks
the question in headless Chromium with "compare with a direct answer" on, waits for the end of
the chain and saves the page.  Needs Debian's chromium and the default model (``make model``).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

QUESTION = "How many letters r are in the word strawberry?"


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


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/web-app.png")
    question = sys.argv[2] if len(sys.argv) > 2 else QUESTION
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    thinkchain = Path(sys.executable).parent / "thinkchain"
    with tempfile.TemporaryDirectory() as data:
        env = {**os.environ, "THINKCHAIN_DATA_DIR": data}
        proc = subprocess.Popen([str(thinkchain), "ui", "--port", str(port)], env=env)
        try:
            wait_healthy(url, proc)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path="/usr/bin/chromium",
                    args=[
                        "--headless",
                        "--no-sandbox",
                        "--disable-gpu",
                        "--disable-background-networking",
                    ],
                )
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.goto(url)
                page.get_by_label("Your question").fill(question)
                page.get_by_text("Compare with a direct answer").click()
                started = time.monotonic()
                page.get_by_role("button", name="Think it through").click()
                page.get_by_text("Total thinking time").wait_for(timeout=900_000)
                print(f"answered in {time.monotonic() - started:.0f} s")
                # Streamlit scrolls inside the page: a tall window shows the whole chain.
                height = page.evaluate(
                    "Math.max(...[...document.querySelectorAll('section, div')]"
                    ".map(e => e.scrollHeight))"
                )
                page.set_viewport_size({"width": 1400, "height": min(int(height) + 40, 4000)})
                page.wait_for_timeout(1000)
                page.screenshot(path=str(out))
                browser.close()
        finally:
            proc.terminate()
            proc.wait(30)
    print(f"saved {out}")


if __name__ == "__main__":
    main()
