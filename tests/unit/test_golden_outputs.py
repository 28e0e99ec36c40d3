"""What users see for the same events, pinned: the terminal, `ask --json`, the proxy's text and
the exports, for a corpus of chains that covers every event kind.

Each scenario runs a scripted model through a real chain (code steps in the real sandbox), its
times are fixed (so output depends on the events alone), and every consumer's output is
compared with the file written for it in tests/golden/.  A refactor of the consumers must keep
these byte for byte; a deliberate change of what users see regenerates them with
``THINKCHAIN_UPDATE_GOLDEN=1`` and shows up in the diff.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from thinkchain import Chain, ChainSettings
from thinkchain.chain.backend import GenerationRequest, TransportError
from thinkchain.chain.events import ChainCompleted, ChainFailed
from thinkchain.chain.strategies import SelfConsistency
from thinkchain.cli.render import TerminalView
from thinkchain.history.export import to_json, to_markdown
from thinkchain.history.record import ChainRecord
from thinkchain.models.backends.scripted import Fault, Reply, ScriptedBackend, step_json
from thinkchain.proxy.reasoning import Content, Finished, Reasoning, RunTranslator
from thinkchain.sandbox import isolation_report

GOLDEN = Path(__file__).parents[1] / "golden"
UPDATE = os.environ.get("THINKCHAIN_UPDATE_GOLDEN") == "1"
FIXED_SECONDS = 1.25

CHAIN = (
    "### Step 1: Restate the question\n\n We count the letter r in strawberry.  \n\n\n"
    "### Step 2: Spell it out\ns, t, r (1), a, w, b, e, r (2), r (3), y.\n\n"
    "### Step 3: Check\nCounting backwards gives 3 again.\n\n"
    "### Answer\n**3**: positions 3, 8 and 9.\n\n"
)
ZH_CHAIN = (
    "### 第 1 步：复述问题\n数 strawberry 里的 r。\n\n"
    "### 第 2 步：逐个字母\ns, t, r, a, w, b, e, r, r, y：3 个。\n\n"
    "### 第 3 步：检查\n倒着数也是 3。\n\n"
    "### 答案\n**3** 个。\n"
)
CODE = "```python\nword = 'strawberry'\nprint(word.count('r'))\n```"
CODE_CHAIN = (
    "### Step 1: Restate the question\nCount r in strawberry.\n\n"
    f"### Step 2: Compute it with Python\nLet Python count.\n{CODE}\nIt will print 3."
)
CODE_REST = "### Step 3: Read the output\nIt printed 3.\n\n### Answer\n**3**\n"


def normalised(value: Any) -> Any:
    """``value`` with every duration fixed, so outputs depend on the events alone."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {}
        for f in dataclasses.fields(value):
            if not f.init:
                continue
            item = getattr(value, f.name)
            if f.name in ("seconds", "ttft") and isinstance(item, float):
                changes[f.name] = FIXED_SECONDS
            else:
                new = normalised(item)
                if new is not item:
                    changes[f.name] = new
        return dataclasses.replace(value, **changes) if changes else value
    if isinstance(value, list):
        return [normalised(v) for v in value]
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return tuple(normalised(v) for v in value)
    if isinstance(value, dict):
        return {k: normalised(v) for k, v in value.items()}
    return value


def single_pass(script: list[Any], **settings: Any) -> tuple[list[Any], str]:
    return chain_events(script, mode="single-pass", **settings)


def chain_events(script: list[Any], question: str = "How many r are in strawberry?", **s: Any):
    backend = ScriptedBackend(script, repeat_last=True)
    settings = ChainSettings(retry_base_delay=0, retry_max_delay=0, seed=0, **s)
    return [normalised(e) for e in Chain(backend, settings).stream(question)], question


def iterative_reply(code: bool) -> Callable[[GenerationRequest], Any]:
    contents = [
        ("Restate", "\n  We count r in strawberry.\n\n"),
        ("Count", f"Let Python count.\n{CODE}\nIt prints the count." if code else "3 of them."),
        ("Check", "Backwards: 3 again.\n"),
    ]

    def reply(request: GenerationRequest) -> Any:
        if request.purpose == "answer":
            return "\n The answer is **3**.\n\n"
        done = sum(1 for m in request.messages if m["role"] == "assistant")
        title, content = contents[min(done, 2)]
        action = "final_answer" if done >= 2 else "continue"
        if request.schema is not None or "JSON" in str(request.messages[0]["content"]):
            return json.dumps({"title": title, "content": content, "next_action": action})
        return f"Title: {title}\n{content}\nNext: {action}"

    return reply


def needs_sandbox() -> None:
    if not isolation_report().safe:
        pytest.skip("code steps need the sandbox (bubblewrap)")


def scenario(name: str) -> tuple[list[Any], str]:
    if name == "single-pass":
        return single_pass([CHAIN])
    if name == "single-pass-zh":
        return chain_events([ZH_CHAIN], "strawberry中有多少个字母r？", mode="single-pass")
    if name == "single-pass-code":
        needs_sandbox()
        return single_pass([CODE_CHAIN, CODE_REST], tools=("python",))
    if name == "single-pass-early-and-repeat":
        early = "### Step 1: Guess\nIt is 3.\n### Answer\n3\n"
        repeat = "### Step 2: Guess again\nIt is 3.\n\n### Step 3: Spell\nr, r, r.\n### Answer\n3\n"
        rest = "### Step 3: Spell\nr, r, r: 3.\n\n### Answer\n**3**\n"
        return single_pass([early, repeat, rest])
    if name == "single-pass-transport-cut":
        cut = CHAIN.split("### Step 3")[0] + "### Step 3: Check\nCounting back"
        rest = "### Step 3: Check\nAgain 3.\n### Answer\n3\n"
        return single_pass([Fault(TransportError("cut", server="s"), after_text=cut), rest])
    if name == "single-pass-untitled":
        bare = "There are 3 letters r in strawberry."
        rest = "### Step 2: Spell it\nr, r, r.\n\n### Step 3: Count\n3.\n\n### Answer\n3\n"
        return single_pass([bare, rest])
    if name == "iterative":
        bad = Reply("not a step at all")
        return chain_events([bad, iterative_reply(False)], mode="iterative")
    if name == "iterative-code":
        needs_sandbox()
        return chain_events([iterative_reply(True)], mode="iterative", tools=("python",))
    if name == "iterative-text":
        return chain_events([iterative_reply(False)], mode="iterative-text")
    if name == "answer-retry":
        return chain_events(
            [
                step_json("A", "a."),
                step_json("B", "b."),
                step_json("C", "c.", "final_answer"),
                "",
                "3",
            ],
            mode="iterative",
        )
    if name == "failure":
        return chain_events(
            [step_json("A", "a."), Fault(TransportError("down", server="s"))],
            mode="iterative",
            max_retries=0,
        )
    if name == "verify":
        check = "Spelled out again: 3.\nAnswer: 3\n"
        return single_pass([CHAIN, check], verify=True)
    if name == "cot":
        return chain_events(["r, r, r.\n\nAnswer: 3\n"], mode="cot")
    raise AssertionError(name)


SCENARIOS = [
    "single-pass",
    "single-pass-zh",
    "single-pass-code",
    "single-pass-early-and-repeat",
    "single-pass-transport-cut",
    "single-pass-untitled",
    "iterative",
    "iterative-code",
    "iterative-text",
    "answer-retry",
    "failure",
    "verify",
    "cot",
]


def terminal(events: list[Any], *, quiet: bool = False) -> str:
    err, out = io.StringIO(), io.StringIO()
    view = TerminalView(
        Console(file=err, width=100, highlight=False),
        out,
        live_answer=False,
        show_steps=not quiet,
    )
    for event in events:
        view.handle(event)
    return f"--- stderr ---\n{err.getvalue()}--- stdout ---\n{out.getvalue()}"


def proxy_items(items: list[Any]) -> str:
    lines = []
    for item in items:
        if isinstance(item, Reasoning):
            lines.append(f"reasoning{' (note)' if item.note else ''}: {item.text!r}")
        elif isinstance(item, Content):
            lines.append(f"content: {item.text!r}")
        elif isinstance(item, Finished):
            o = item.outcome
            lines.append(f"answer: {o.answer!r}")
            lines.append(f"reasoning (finished): {o.reasoning!r}")
            lines.append(f"finish_reason: {o.finish_reason}")
            lines.append("usage: " + json.dumps(o.usage_dict(), sort_keys=True))
            lines.append("error: " + json.dumps(o.error.to_dict() if o.error else None))
            lines.append("trace: " + json.dumps(o.trace, ensure_ascii=False, sort_keys=True))
    return "\n".join(lines) + "\n"


def check(name: str, kind: str, text: str) -> None:
    path = GOLDEN / f"{name}.{kind}.txt"
    if UPDATE or not path.exists():
        path.write_text(text, encoding="utf-8")
        if not UPDATE:
            pytest.fail(f"{path} was missing and has been written: look at it and rerun")
    assert text == path.read_text(encoding="utf-8"), f"{path.name} changed"


@pytest.mark.parametrize("name", SCENARIOS)
def test_a_chain_shows_as_before_in_every_consumer(name: str) -> None:
    events, _ = scenario(name)
    result = events[-1].result
    assert isinstance(events[-1], (ChainCompleted, ChainFailed))
    check(name, "terminal", terminal(events))
    check(name, "terminal-quiet", terminal(events, quiet=True))
    check(name, "json", json.dumps(result.to_dict(), ensure_ascii=False, indent=2) + "\n")
    translator = RunTranslator()
    items = [item for event in events for item in translator.feed(event)]
    check(name, "proxy", proxy_items(items))
    record = ChainRecord.from_result(result, chain_id="c1", created_at=0.0, backend="scripted")
    check(name, "export-md", to_markdown(record, "en") + "\n---\n" + to_markdown(record, "zh"))
    check(name, "export-json", to_json(record) + "\n")


def sc_events() -> list[Any]:
    answers = iter(["3", "3", "4", "3", "5"])

    def reply(request: GenerationRequest) -> Any:
        if request.purpose == "answer":
            return next(answers)
        done = sum(1 for m in request.messages if m["role"] == "assistant")
        return step_json(
            f"Step {done + 1}", f"Thought {done + 1}.", "final_answer" if done else "continue"
        )

    backend = ScriptedBackend([reply], repeat_last=True)
    settings = ChainSettings(mode="iterative", min_steps=1, retry_base_delay=0, seed=0)
    sc = SelfConsistency(backend, settings, k=5, early_stop="off", parallel=False)
    return [normalised(e) for e in sc.stream("How many r are in strawberry?")]


def test_self_consistency_shows_as_before() -> None:
    events = sc_events()
    assert isinstance(events[-1], ChainCompleted) and events[-1].result.decision is not None
    translator = RunTranslator()
    check("sc", "proxy", proxy_items([i for e in events for i in translator.feed(e)]))
    check(
        "sc", "json", json.dumps(events[-1].result.to_dict(), ensure_ascii=False, indent=2) + "\n"
    )
