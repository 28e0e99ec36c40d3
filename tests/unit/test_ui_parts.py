"""The web page's parts that need no browser: its texts, its Markdown escaping, its live view."""

from __future__ import annotations

import re
import string

from thinkchain.chain.events import Retry, StepDelta, StepStarted
from thinkchain.chain.view import ChainView
from thinkchain.ui.markdown import safe_label, safe_markdown
from thinkchain.ui.texts import EN, ZH

_CJK = re.compile(r"[\u4e00-\u9fff]")


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_the_chinese_page_is_as_complete_as_the_english_one():
    assert set(ZH) == set(EN)
    for key, english in EN.items():
        chinese = ZH[key]
        assert chinese.strip(), key
        assert _CJK.search(chinese), f"{key} is not translated: {chinese!r}"
        assert _fields(chinese) == _fields(english), key


def test_markup_outside_code_is_shown_as_text():
    text = "<script>alert(1)</script><img src=x onerror=\"document.title='pwned'\"> & more"
    out = safe_markdown(text)
    assert "<" not in out
    assert out == (
        "&lt;script>alert(1)&lt;/script>"
        "&lt;img src=x onerror=\"document.title='pwned'\"> &amp; more"
    )
    assert safe_label("Markup <b>in</b>\na title") == "Markup &lt;b>in&lt;/b> a title"


def test_code_is_left_as_written():
    text = "Compare `a < b && c` here.\n```python\nif a < b:\n    print('<ok>')\n```\nthen <i>"
    out = safe_markdown(text)
    assert "`a < b && c`" in out
    assert "```python\nif a < b:\n    print('<ok>')\n```" in out
    assert out.endswith("then &lt;i>")
    assert safe_markdown("a lone ` backtick <b>") == "a lone ` backtick &lt;b>"


def test_money_stays_money_and_lines_stay_lines():
    assert safe_markdown("It costs $5, so 3*$5=$15.") == "It costs \\$5, so 3*\\$5=\\$15."
    assert safe_markdown("s-t-r\na-w\n\nnext") == "s-t-r  \na-w\n\nnext"


def test_a_discarded_attempt_disappears_from_the_step_being_written():
    view = ChainView()
    view.apply(StepStarted(1))
    view.apply(StepDelta(1, "title", "Bad"))
    view.apply(StepDelta(1, "content", "garbage"))
    view.apply(Retry("step", 1, 1, "not JSON"))
    view.apply(StepDelta(1, "title", "Good"))
    assert view.current is not None
    assert (view.current.title, view.current.content) == ("Good", "")
    assert [n.reason for n in view.notices] == ["not JSON"]


def test_a_failed_code_run_names_its_limit_in_the_page_language():
    from thinkchain.ui.texts import FAILURES, translator

    assert set(FAILURES) == {"timeout", "memory", "output_limit", "killed", "sandbox_error"}
    en, zh = translator("en"), translator("zh")
    for status in FAILURES:
        english = en("code_failed", detail=en(f"code_failure_{status}"), seconds="5.00 s")
        chinese = zh("code_failed", detail=zh(f"code_failure_{status}"), seconds="5.00 s")
        assert re.fullmatch(r"Error \([a-z ]+\) · 5\.00 s", english), english
        assert "_" not in english, english  # words, not the status code
        assert re.fullmatch(r"出错（[\u4e00-\u9fff]+） · 5\.00 s", chinese), chinese
    assert en("code_failed", detail=en("code_failure_timeout"), seconds="5 s") == (
        "Error (time limit) · 5 s"
    )
    assert zh("code_failure_memory") == "（内存超限）"
