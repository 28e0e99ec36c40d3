"""`thinkchain serve`: the command lines it builds and the clear errors it gives before starting.

No engine runs here: vLLM is not installed and there is no GPU.  What a user would notice is
the exact command vLLM receives (the seed's defaults, their options, pass-through arguments
untouched) and one clear line when vLLM or a GPU is missing.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from thinkchain.cli import app
from thinkchain.models import serve

runner = CliRunner()
SEED_MODEL = "/root/autodl-tmp/qwen/Qwen2.5-7B-Instruct"


def test_vllm_command_with_the_seeds_defaults():
    cmd = serve.vllm_command(serve.VllmOptions(model=SEED_MODEL), python="python")
    # The seed's deployment, option for option.
    assert cmd == [
        "python", "-m", "vllm.entrypoints.openai.api_server",
        "--model", SEED_MODEL,
        "--served-model-name", "Qwen2.5-7B-Instruct",
        "--max-model-len", "32768",
        "--port", "8000",
    ]  # fmt: skip


def test_vllm_command_with_every_option_and_pass_through_arguments_untouched():
    extra = ("--distributed-executor-backend", "ray", "--port", "9", "--gpu-memory-utilization=0.9")
    opts = serve.VllmOptions(
        model="Qwen/Qwen2.5-72B-Instruct",
        served_model_name="big",
        max_model_len=8192,
        host="0.0.0.0",
        port=8001,
        tensor_parallel_size=4,
        pipeline_parallel_size=2,
        api_key="sk-secret",
        extra_args=extra,
    )
    cmd = serve.vllm_command(opts, python="py")
    assert cmd[:5] == ["py", "-m", "vllm.entrypoints.openai.api_server", "--model", opts.model]
    pairs = dict(zip(cmd[5 : -len(extra) : 2], cmd[6 : -len(extra) : 2], strict=True))
    assert pairs == {
        "--served-model-name": "big",
        "--max-model-len": "8192",
        "--host": "0.0.0.0",
        "--port": "8001",
        "--tensor-parallel-size": "4",
        "--pipeline-parallel-size": "2",
        "--api-key": "sk-secret",
    }
    # Whatever came after `--` goes last, in order, even when it repeats one of our options.
    assert tuple(cmd[-len(extra) :]) == extra


def test_served_name_defaults_to_the_models_last_path_component():
    assert serve.default_served_name("qwen/Qwen2.5-7B-Instruct") == "Qwen2.5-7B-Instruct"
    assert serve.default_served_name(SEED_MODEL + "/") == "Qwen2.5-7B-Instruct"
    assert serve.default_served_name("/m/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf") == (
        "qwen2.5-coder-0.5b-instruct-q4_k_m"
    )


def test_llamacpp_command_serves_the_gguf_locally_with_room_for_a_chain():
    opts = serve.LlamaCppOptions(model_path=Path("/m/small.gguf"), port=8080, extra_args=("-x",))
    assert serve.llamacpp_command(opts, python="py") == [
        "py", "-m", "llama_cpp.server", "--model", "/m/small.gguf",
        "--model_alias", "small", "--host", "127.0.0.1", "--port", "8080",
        "--n_ctx", "8192", "-x",
    ]  # fmt: skip


def test_api_keys_are_hidden_when_the_command_is_shown():
    shown = serve.redact(["vllm", "--api-key", "sk-secret", "--api_key=sk-other", "--port", "1"])
    assert "sk-secret" not in shown and "sk-other" not in shown
    assert "--api-key ***" in shown and "--api_key=***" in shown and "--port 1" in shown


def test_the_printed_url_reaches_a_wildcard_bind_through_loopback():
    assert serve.base_url(None, 8000) == "http://127.0.0.1:8000/v1"
    assert serve.base_url("0.0.0.0", 8000) == "http://127.0.0.1:8000/v1"
    assert serve.base_url("::", 9) == "http://[::1]:9/v1"
    assert serve.base_url("10.1.2.3", 9) == "http://10.1.2.3:9/v1"


def test_missing_vllm_is_one_clear_error():
    with pytest.raises(serve.ServeError, match=r"pip install 'thinkchain\[vllm\]'"):
        serve.check_vllm_installed(find_spec=lambda name: None)
    serve.check_vllm_installed(find_spec=lambda name: object())  # present: no error


def test_missing_llamacpp_server_names_what_is_missing():
    def find_spec(name):
        return None if name == "sse_starlette" else object()

    with pytest.raises(serve.ServeError, match=r"missing: sse_starlette.*thinkchain\[serve\]"):
        serve.check_llamacpp_installed(find_spec=find_spec)


def test_gpu_detection(tmp_path):
    dev = tmp_path / "dev"
    dev.mkdir()

    def no_smi(name):
        return None

    assert serve.detect_gpu(dev=dev, which=no_smi, env={}) is None
    (dev / "nvidia0").touch()
    (dev / "nvidia1").touch()
    (dev / "nvidiactl").touch()
    assert serve.detect_gpu(dev=dev, which=no_smi, env={}) == "2 NVIDIA device(s)"
    # GPUs hidden on purpose are not there for vLLM either.
    assert serve.detect_gpu(dev=dev, which=no_smi, env={"CUDA_VISIBLE_DEVICES": ""}) is None
    with pytest.raises(serve.ServeError, match="no GPU found"):
        serve.check_gpu(detect=lambda: None)


def _one_error_line(output: str) -> str:
    lines = [ln for ln in output.splitlines() if ln.strip()]
    assert "Traceback" not in output
    assert len(lines) == 1, output
    return lines[0]


def test_cli_without_vllm_says_so_in_one_line_and_exits_non_zero(monkeypatch):
    real_check = serve.check_vllm_installed

    def not_installed():
        real_check(find_spec=lambda name: None)

    monkeypatch.setattr(serve, "check_vllm_installed", not_installed)
    result = runner.invoke(app, ["serve", "--engine", "vllm", "--model", SEED_MODEL])
    assert result.exit_code != 0
    line = _one_error_line(result.output)
    assert "vLLM is not installed" in line and "thinkchain[vllm]" in line


def test_cli_without_a_gpu_says_so_in_one_line_and_exits_non_zero(monkeypatch):
    monkeypatch.setattr(serve, "check_vllm_installed", lambda: None)
    monkeypatch.setattr(serve, "detect_gpu", lambda: None)
    result = runner.invoke(app, ["serve", "--engine", "vllm", "--model", SEED_MODEL])
    assert result.exit_code != 0
    line = _one_error_line(result.output)
    assert "no GPU found" in line and "--engine llama.cpp" in line


def test_cli_rejects_unknown_engines_and_vllm_options_on_llamacpp():
    result = runner.invoke(app, ["serve", "--engine", "tgi"])
    assert result.exit_code != 0 and "unknown engine 'tgi'" in result.output
    result = runner.invoke(app, ["serve", "--engine", "llama.cpp", "--tensor-parallel-size", "2"])
    assert result.exit_code != 0 and "are for --engine vllm" in result.output


def test_cli_refuses_a_port_that_is_taken(monkeypatch, tmp_path):
    import socket

    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = runner.invoke(
            app,
            ["serve", "--engine", "llama.cpp", "--model-path", str(gguf), "--port", str(port)],
        )
    assert result.exit_code != 0
    assert f"port {port} is already in use" in result.output
