"""The good path: what code gives back, as a user and a small model see it."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from thinkchain.sandbox import STATUSES, CodeResult, SandboxLimits
from thinkchain.sandbox.output import OutputCapture

from .helpers import make_sandbox


def test_print_comes_back(method: str) -> None:
    result = make_sandbox(method).run('print("hello")')
    assert result.ok
    assert result.status == "ok"
    assert result.output == "hello\n"
    assert result.error is None
    assert result.exit_code == 0
    assert not result.truncated
    assert result.seconds > 0


def test_last_expression_is_shown_like_a_notebook(method: str) -> None:
    result = make_sandbox(method).run('word = "strawberry"\nword.count("r")')
    assert result.ok
    assert result.output == "3\n"


def test_last_expression_shows_its_repr_and_none_shows_nothing(method: str) -> None:
    sandbox = make_sandbox(method)
    assert sandbox.run('"abc"').output == "'abc'\n"
    assert sandbox.run("None").output == ""
    assert sandbox.run('print("once")').output == "once\n"  # print's None is not shown
    assert sandbox.run("x = None").output == ""


def test_a_last_assignment_is_shown_when_nothing_was_printed(method: str) -> None:
    sandbox = make_sandbox(method)
    assert sandbox.run('count = "purple".count("u")').output == "1\n"
    assert sandbox.run("total = 2\ntotal += 3").output == "5\n"
    assert sandbox.run("n: int = 7").output == "7\n"
    assert sandbox.run('print("done")\nx = 5').output == "done\n"  # it printed: shown as is
    assert sandbox.run("import sys\nsys.stderr.write('e\\n')\nx = 5").output == "e\n"
    assert sandbox.run("a, b = 1, 2").output == ""  # several names: nothing to pick


def test_multi_line_output_keeps_stdout_and_stderr_in_order(method: str) -> None:
    code = (
        "import sys\n"
        "for i in range(3):\n"
        "    print('out', i)\n"
        "    print('err', i, file=sys.stderr)\n"
    )
    result = make_sandbox(method).run(code)
    assert result.output == "out 0\nerr 0\nout 1\nerr 1\nout 2\nerr 2\n"


def test_chinese_output(method: str) -> None:
    result = make_sandbox(method).run('print("草莓里有三个字母r")\n"草莓"')
    assert result.output == "草莓里有三个字母r\n'草莓'\n"


def test_exception_gives_the_error_type_and_failing_line(method: str) -> None:
    code = "def half(n):\n    return n / 0\n\nprint('before')\nhalf(4)\n"
    result = make_sandbox(method).run(code)
    assert result.status == "error"
    assert result.output == "before\n"
    assert result.exit_code == 1
    assert result.error is not None
    assert result.error.splitlines()[-1] == "ZeroDivisionError: division by zero"
    assert "line 2, in half" in result.error
    assert "return n / 0" in result.error
    assert "bootstrap" not in result.error  # only the model's own code is shown
    assert len(result.error) < 1600


def test_syntax_error_names_the_line_and_the_problem(method: str) -> None:
    result = make_sandbox(method).run("x = 1\nprint(x +\n")
    assert result.status == "error"
    assert result.error is not None
    assert "line 2" in result.error
    assert "SyntaxError" in result.error
    assert result.output == ""


def test_nul_byte_in_code_is_an_error_not_a_crash(method: str) -> None:
    result = make_sandbox(method).run("print(1)\0")
    assert result.status == "error"
    assert result.error


def test_stdlib_imports_work(method: str) -> None:
    code = (
        "import math, fractions, itertools, re, datetime, collections, json, statistics\n"
        "print(math.comb(5, 2), fractions.Fraction(1, 3) + fractions.Fraction(1, 6))\n"
        "print(len(list(itertools.permutations('abc'))), re.findall('r', 'strawberry'))\n"
        "print(datetime.date(2024, 2, 28) + datetime.timedelta(days=1))\n"
        "statistics.mean([1, 2, 3, 4])\n"
    )
    result = make_sandbox(method).run(code)
    assert result.ok, result.error
    assert result.output == "10 1/2\n6 ['r', 'r', 'r']\n2024-02-29\n2.5\n"


def test_no_site_packages(method: str) -> None:
    result = make_sandbox(method).run("import pydantic")
    assert result.status == "error"
    assert result.error is not None
    assert "ModuleNotFoundError" in result.error


def test_sys_exit(method: str) -> None:
    sandbox = make_sandbox(method)
    assert sandbox.run("import sys\nprint('a')\nsys.exit(0)").status == "ok"
    failed = sandbox.run("import sys\nsys.exit(3)")
    assert (failed.status, failed.exit_code) == ("error", 3)
    said = sandbox.run("import sys\nsys.exit('cannot go on')")
    assert said.status == "error"
    assert said.error == "cannot go on"


def test_input_gets_end_of_file(method: str) -> None:
    result = make_sandbox(method).run("input()")
    assert result.status == "error"
    assert result.error is not None
    assert "EOFError" in result.error


def test_control_characters_cannot_drive_a_terminal(method: str) -> None:
    result = make_sandbox(method).run(r'print("a\x1b]52;c;aGk=\x07b\rc")')
    assert "\x1b" not in result.output
    assert "\r" not in result.output
    assert result.output == "a\\x1b]52;c;aGk=\\x07b\\rc\n"


def test_result_json_round_trip(method: str) -> None:
    result = make_sandbox(method).run("print('草莓')\n1/0")
    again = CodeResult.from_dict(json.loads(json.dumps(result.to_dict())))
    assert again == result


def test_from_dict_refuses_what_is_not_a_result() -> None:
    with pytest.raises(ValueError, match="unknown status"):
        CodeResult.from_dict({"status": "fine"})
    with pytest.raises(ValueError, match="missing"):
        CodeResult.from_dict({"status": "ok", "code": ""})
    assert set(STATUSES) == {
        "ok",
        "error",
        "timeout",
        "memory",
        "output_limit",
        "killed",
        "sandbox_error",
    }


def test_limits_have_safe_defaults_and_refuse_nonsense() -> None:
    limits = SandboxLimits()
    assert (limits.wall_seconds, limits.cpu_seconds, limits.memory_mb) == (10.0, 5, 256)
    assert (limits.processes, limits.output_chars, limits.file_mb) == (16, 4000, 16)
    assert limits.require_isolation is True
    for bad in ({"wall_seconds": 0}, {"cpu_seconds": -1}, {"memory_mb": 1}, {"processes": 0}):
        with pytest.raises(ValidationError):
            SandboxLimits(**bad)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        SandboxLimits(network=True)  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        limits.cpu_seconds = 100  # type: ignore[misc]


def test_output_capture_keeps_beginning_and_end_with_a_marker() -> None:
    capture = OutputCapture(keep=100)
    for i in range(1000):
        capture.feed(f"line {i}\n".encode())
    text, cut = capture.result()
    assert cut
    assert len(text) <= 100
    assert text.startswith("line 0\nline 1\n")
    assert text.endswith("line 999\n")
    total = sum(len(f"line {i}\n") for i in range(1000))
    kept = len(text) - len(text[text.index("\n[…") : text.index("…]\n") + 3])
    assert f"[… {total - kept:,} characters cut …]" in text


def test_output_capture_decodes_characters_split_between_reads() -> None:
    capture = OutputCapture(keep=100)
    data = "草莓\r\n".encode()
    for i in range(len(data)):
        capture.feed(data[i : i + 1])
    assert capture.result() == ("草莓\n", False)
