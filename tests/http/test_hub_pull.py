"""`thinkchain models pull org/name`: hub downloads fail fast and clearly, and are atomic.

No test reaches the internet.  Unreachable hubs are a closed port and a listener that never
answers, both on 127.0.0.1; a reachable hub is a small local HTTP server, with the download
itself done by a stand-in for the hub client's snapshot_download.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner

from thinkchain.cli import app
from thinkchain.models import hub
from thinkchain.models.embedded import ModelError

runner = CliRunner()
REPO = "qwen/Qwen2.5-7B-Instruct"
FAST_ENOUGH = 20.0  # seconds: the point is "no hang", not speed


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")  # `models list` prints whole paths


@pytest.fixture
def closed_port() -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    yield f"http://127.0.0.1:{port}"


@pytest.fixture
def silent_hub() -> Iterator[str]:
    """Accepts connections (the kernel does, from the backlog) and never says a word."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture
def local_hub() -> Iterator[str]:
    """A hub API that knows one model: 200 for it, 404 for anything else."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            known = self.path.endswith("/" + REPO)
            self.send_response(200 if known else 404)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def pull_cli(*args: str):
    started = time.monotonic()
    result = runner.invoke(app, ["models", "pull", *args])
    return result, time.monotonic() - started


def error_line(output: str) -> str:
    lines = [ln for ln in output.splitlines() if ln.strip()]
    assert "Traceback" not in output
    assert len(lines) == 1, output
    return lines[0]


@pytest.mark.parametrize(
    ("source", "hub_name"), [("modelscope", "ModelScope"), ("huggingface", "Hugging Face hub")]
)
def test_unreachable_hub_fails_fast_with_one_clear_line(closed_port, source, hub_name):
    result, seconds = pull_cli(REPO, "--source", source, "--endpoint", closed_port)
    assert result.exit_code != 0
    line = error_line(result.output)
    assert f"cannot reach {hub_name} at {closed_port}: connection refused" in line
    assert seconds < FAST_ENOUGH
    assert not hub.HubModel.of(REPO, source).path.exists()


def test_hub_that_accepts_but_never_answers_fails_within_the_probe_deadline(silent_hub):
    # The Hugging Face client itself waits on such a server for minutes.
    result, seconds = pull_cli(REPO, "--source", "huggingface", "--endpoint", silent_hub)
    assert result.exit_code != 0
    assert "timed out" in error_line(result.output)
    assert seconds < FAST_ENOUGH


def test_endpoint_comes_from_the_hub_clients_own_variables(monkeypatch, closed_port):
    host = closed_port.removeprefix("http://")
    monkeypatch.setenv("MODELSCOPE_DOMAIN", host)
    assert hub.endpoint_for("modelscope") == "https://" + host  # a bare domain, as ModelScope
    monkeypatch.setenv("HF_ENDPOINT", closed_port)
    result, _ = pull_cli(REPO, "--source", "hf")
    assert f"cannot reach Hugging Face hub at {closed_port}" in error_line(result.output)


def test_missing_hub_client_is_one_clear_line(monkeypatch, closed_port):
    monkeypatch.setitem(sys.modules, "modelscope", None)  # `import modelscope` fails
    result, _ = pull_cli(REPO, "--source", "modelscope", "--endpoint", closed_port)
    assert result.exit_code != 0
    line = error_line(result.output)
    assert "need the modelscope package" in line and "thinkchain[hub]" in line


def test_unknown_model_on_a_reachable_hub_is_named(local_hub):
    result, _ = pull_cli("qwen/No-Such-Model", "--endpoint", local_hub)
    assert "qwen/No-Such-Model was not found on ModelScope" in error_line(result.output)


def test_bad_names_and_sources_are_refused():
    assert "org/name" in error_line(runner.invoke(app, ["models", "pull", "a/b/c"]).output)
    result = runner.invoke(app, ["models", "pull", REPO, "--source", "github"])
    assert "unknown hub 'github'" in error_line(result.output)


def fake_snapshot(files: dict[str, bytes], fail_after: int | None = None):
    """A stand-in for snapshot_download that writes ``files`` and may die part way."""
    calls: list[tuple[str, Path, str | None, str]] = []

    def snapshot(repo_id: str, local_dir: Path, revision: str | None, endpoint: str) -> str:
        calls.append((repo_id, local_dir, revision, endpoint))
        for i, (name, data) in enumerate(files.items()):
            if fail_after is not None and i == fail_after:
                raise ConnectionError("Connection reset by peer\nlong details the user needn't see")
            (local_dir / name).parent.mkdir(parents=True, exist_ok=True)
            (local_dir / name).write_bytes(data)
        (local_dir / ".cache").mkdir(exist_ok=True)
        (local_dir / ".cache" / "bookkeeping").write_text("client state")
        return str(local_dir)

    snapshot.calls = calls  # type: ignore[attr-defined]
    return snapshot


FILES = {"config.json": b"{}", "model-00001-of-00002.safetensors": b"x" * 3000,
         "model-00002-of-00002.safetensors": b"y" * 2000}  # fmt: skip


def test_pull_list_path_verify_rm_of_a_hub_model(local_hub):
    model = hub.HubModel.of(REPO, "modelscope")
    snapshot = fake_snapshot(FILES)
    path = hub.pull(model, endpoint=local_hub, revision="master", snapshot=snapshot)
    assert snapshot.calls == [(REPO, model.partial_path, "master", local_hub)]
    assert path == model.path and not model.partial_path.exists()
    assert sorted(p.name for p in path.iterdir() if not p.name.startswith(".")) == sorted(FILES)

    listed = runner.invoke(app, ["models", "list"]).output
    row = next(ln for ln in listed.splitlines() if REPO in ln)
    assert "modelscope" in row and " yes " in row and str(path) in row

    assert runner.invoke(app, ["models", "path", REPO]).output.strip() == str(path)
    assert runner.invoke(app, ["models", "verify", REPO]).exit_code == 0
    # A file changed after the download is caught.
    (path / "model-00002-of-00002.safetensors").write_bytes(b"z" * 2000)
    result = runner.invoke(app, ["models", "verify", REPO])
    assert result.exit_code == 1
    assert "model-00002-of-00002.safetensors: SHA-256 differs" in result.output

    assert runner.invoke(app, ["models", "rm", REPO]).exit_code == 0
    assert not path.exists()
    assert runner.invoke(app, ["models", "path", REPO]).exit_code == 1


def test_interrupted_hub_pull_leaves_no_usable_looking_model_and_resumes(local_hub):
    model = hub.HubModel.of(REPO, "huggingface")
    with pytest.raises(ModelError) as caught:
        hub.pull(model, endpoint=local_hub, snapshot=fake_snapshot(FILES, fail_after=2))
    message = str(caught.value)
    assert "download of qwen/Qwen2.5-7B-Instruct failed: Connection reset by peer" in message
    assert "\n" not in message and "resume" in message
    assert not model.path.exists() and not model.is_present()
    assert hub.find_local(REPO) is None  # `serve --engine vllm` will not pick it up
    listed = runner.invoke(app, ["models", "list"]).output
    assert "partial" in next(ln for ln in listed.splitlines() if REPO in ln)

    # The next pull continues in the same folder and finishes it.
    snapshot = fake_snapshot(FILES)
    assert hub.pull(model, endpoint=local_hub, snapshot=snapshot) == model.path
    assert snapshot.calls[0][1] == model.partial_path
    assert hub.find_local(REPO) == model and hub.verify(model) == []


@pytest.mark.parametrize(
    ("source", "module"), [("modelscope", "modelscope"), ("huggingface", "huggingface_hub")]
)
def test_the_real_hub_clients_are_pointed_at_the_endpoint_and_their_errors_are_one_line(
    local_hub, source, module
):
    pytest.importorskip(module)
    # The probe is answered, but this little hub has no file listing: the real client fails.
    result, seconds = pull_cli(REPO, "--source", source, "--endpoint", local_hub)
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    errors = [ln for ln in result.output.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1
    assert f"download of {REPO} failed:" in errors[0] and "404" in errors[0]
    assert seconds < FAST_ENOUGH
    assert not hub.HubModel.of(REPO, source).is_present()
