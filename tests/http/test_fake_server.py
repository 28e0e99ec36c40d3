"""The fake OpenAI server stays quiet when a client hangs up, and loud when it breaks itself.

A client that resets its connection (mid-body, or while the connection waits for its next
keep-alive request) used to make socketserver print a traceback into whichever test ran then.
Leaving the ``with`` block closes the server, which joins its handler threads, so everything
they print is in ``capsys`` before the assertions read it.
"""

from __future__ import annotations

import json
import socket
import struct
import time
from typing import Any

import httpx
import pytest

from thinkchain.testing.fake_openai import FakeOpenAIServer

BODY = json.dumps({"model": "fake-model", "messages": [{"role": "user", "content": "hi"}]}).encode()


def _post_head(length: int) -> bytes:
    return (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % length
    )


def _reset(sock: socket.socket) -> None:
    """Close with a TCP reset, as a killed client or a dropped network does."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def _ask(server: FakeOpenAIServer) -> str:
    reply = httpx.post(f"http://127.0.0.1:{server.port}/v1/chat/completions", content=BODY)
    reply.raise_for_status()
    content: str = reply.json()["choices"][0]["message"]["content"]
    return content


def test_a_client_resetting_its_connection_prints_nothing_and_the_server_goes_on(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with FakeOpenAIServer(["first", "after the resets"]) as server:
        # A whole request and reply, then a reset while the server waits on the keep-alive.
        kept_alive = socket.create_connection(("127.0.0.1", server.port))
        kept_alive.sendall(_post_head(len(BODY)) + BODY)
        assert kept_alive.recv(65536).startswith(b"HTTP/1.1 200")
        _reset(kept_alive)
        # Half a body, then a reset while the server reads the rest.
        half = socket.create_connection(("127.0.0.1", server.port))
        half.sendall(_post_head(1000) + b'{"model"')
        time.sleep(0.1)
        _reset(half)

        assert _ask(server) == "after the resets"

    captured = capsys.readouterr()
    assert "Exception occurred" not in captured.err + captured.out
    assert "ConnectionResetError" not in captured.err + captured.out


def test_a_fault_of_the_server_itself_is_still_reported(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def broken_responder(body: dict[str, Any]) -> Any:
        raise RuntimeError("the script itself is broken")

    with FakeOpenAIServer(responder=broken_responder) as server, pytest.raises(httpx.HTTPError):
        _ask(server)

    captured = capsys.readouterr()
    assert "RuntimeError: the script itself is broken" in captured.err
