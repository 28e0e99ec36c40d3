"""Which prompt prefixes a page or proxy prepares at start: read off the shapes themselves."""

from __future__ import annotations

import threading

from thinkchain.chain.prompts import prompt
from thinkchain.chain.settings import ChainSettings
from thinkchain.models import prefixes


def test_each_configuration_yields_the_system_prompt_its_chain_sends():
    for lang in ("en", "zh"):
        code = ChainSettings(mode="single-pass", lang=lang, tools=("python",))
        plain = ChainSettings(mode="single-pass", lang=lang, tools=())
        assert prefixes.system_prompt(code) == prompt(lang, "single_pass_code_system")
        assert prefixes.system_prompt(plain) == prompt(lang, "single_pass_system")
        iterative = ChainSettings(mode="iterative", lang=lang, tools=("python",))
        system = prefixes.system_prompt(iterative)
        assert system is not None
        assert system.startswith(prompt(lang, "step_system"))
        assert prompt(lang, "code_tools") in system


def test_configurations_list_languages_within_tools_options_within_modes(monkeypatch):
    monkeypatch.delenv("THINKCHAIN_MODE", raising=False)
    configs = prefixes.configurations([("python",), ()], modes=["single-pass", "cot"])
    assert [(c.mode, c.tools, c.lang) for c in configs] == [
        ("single-pass", ("python",), "en"),
        ("single-pass", ("python",), "zh"),
        ("single-pass", (), "en"),
        ("single-pass", (), "zh"),
        ("cot", ("python",), "en"),
        ("cot", ("python",), "zh"),
        ("cot", (), "en"),
        ("cot", (), "zh"),
    ]
    monkeypatch.setenv("THINKCHAIN_MODE", "iterative")
    assert {c.mode for c in prefixes.configurations([()])} == {"iterative"}
    monkeypatch.setenv("THINKCHAIN_MODE", "no-such-mode")
    assert {c.mode for c in prefixes.configurations([()])} == {"single-pass"}


def test_distinct_prompts_only_in_the_order_given():
    configs = prefixes.configurations([("python",), ()], modes=["single-pass"]) * 2
    assert prefixes.system_prompts(configs) == [
        prompt("en", "single_pass_code_system"),
        prompt("zh", "single_pass_code_system"),
        prompt("en", "single_pass_system"),
        prompt("zh", "single_pass_system"),
    ]


class Recorder:
    def __init__(self) -> None:
        self.prepared: list[list[str]] = []
        self.done = threading.Event()

    def prepare_prefixes(self, systems):
        self.prepared.append(list(systems))
        self.done.set()


def test_a_backend_that_keeps_prefixes_gets_them_from_a_background_thread():
    backend = Recorder()
    caller = threading.current_thread()
    seen_in: list[threading.Thread] = []

    def tools():
        seen_in.append(threading.current_thread())
        return [()]

    thread = prefixes.prepare_in_background(backend, tools, modes=["single-pass"])
    assert thread is not None
    thread.join(timeout=30)
    assert backend.prepared == [
        [prompt("en", "single_pass_system"), prompt("zh", "single_pass_system")]
    ]
    assert seen_in and seen_in[0] is not caller  # the sandbox probe stays off the caller's path


def test_backends_without_prefixes_and_failures_are_left_alone(caplog):
    assert prefixes.prepare_in_background(object(), lambda: [()]) is None

    def broken():
        raise RuntimeError("sandbox probe failed")

    backend = Recorder()
    thread = prefixes.prepare_in_background(backend, broken)
    assert thread is not None
    thread.join(timeout=30)
    assert backend.prepared == []
    assert "could not prepare the prompt prefixes" in caplog.text
