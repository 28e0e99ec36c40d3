"""Real servers on 127.0.0.1: the fake upstream and the proxy under uvicorn, in threads."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import uvicorn

from thinkchain.chain.backend import Backend
from thinkchain.chain.settings import ChainSettings
from thinkchain.proxy import ProxySettings, create_app
from thinkchain.testing.fake_openai import FakeOpenAIServer

# Retries without waiting, so failure paths are quick; nothing else differs from defaults.
# The proxy's tests script JSON steps: the iterative shape, one step per upstream call.
FAST_CHAIN = ChainSettings(
    mode="iterative", retry_base_delay=0.0, retry_max_delay=0.0, max_retries=1
)


class ServerThread:
    """uvicorn serving an app on a free port of 127.0.0.1, in a daemon thread."""

    def __init__(self, app: Any) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        config = uvicorn.Config(app, lifespan="on", log_config=None, access_log=True)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the proxy did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)
        self.sock.close()


@pytest.fixture
def fake() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        yield server


@pytest.fixture
def start_proxy() -> Iterator[Callable[..., ServerThread]]:
    """Start a proxy: ``start_proxy(upstreams=(fake.url,), api_keys=...)``; stopped afterwards."""
    running: list[ServerThread] = []

    def start(*, local_backend: Backend | None = None, **overrides: Any) -> ServerThread:
        overrides.setdefault("chain", FAST_CHAIN)
        settings = ProxySettings(**overrides)
        server = ServerThread(create_app(settings, local_backend=local_backend)).start()
        running.append(server)
        return server

    yield start
    for server in running:
        server.stop()


@pytest.fixture
def proxy(fake: FakeOpenAIServer, start_proxy: Callable[..., ServerThread]) -> ServerThread:
    """A proxy without keys in front of the fake upstream."""
    return start_proxy(upstreams=(fake.url,))
