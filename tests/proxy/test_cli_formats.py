"""``thinkchain proxy --reasoning-format`` and the Responses API, as a user runs the command."""

from __future__ import annotations

import subprocess

from .helpers import DEMO_ANSWER, DEMO_QUESTION, client
from .test_cli import THINKCHAIN, proxy_process


def test_the_operator_chooses_think_tags_and_responses_still_get_the_item() -> None:
    with proxy_process("--demo", "--reasoning-format", "think") as (url, output):
        api = client(url)
        reply = api.chat.completions.create(model="demo-thinkchain", messages=DEMO_QUESTION)  # type: ignore[arg-type]
        content = reply.choices[0].message.content or ""
        assert content.startswith("<think>\n**Step 1: ")
        assert content.endswith("</think>\n\n" + DEMO_ANSWER)
        response = api.responses.create(model="demo-thinkchain", input=DEMO_QUESTION[0]["content"])
        assert [item.type for item in response.output] == ["reasoning", "message"]
        assert response.output_text == DEMO_ANSWER
    assert "steps in chat completions: think" in " ".join("".join(output).split())


def test_an_unknown_reasoning_format_is_a_clear_error() -> None:
    done = subprocess.run(
        [*THINKCHAIN, "proxy", "--demo", "--reasoning-format", "html"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "'reasoning_content', 'reasoning', 'think' or 'none'" in done.stderr
