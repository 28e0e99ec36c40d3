"""The asyncio form: runs side by side, and cancelling one kills its code."""

from __future__ import annotations

import asyncio

import pytest

from .helpers import make_sandbox, sandbox_processes


async def test_several_runs_at_once_each_get_their_own_result(method: str) -> None:
    sandbox = make_sandbox(method)
    codes = [f"import time\ntime.sleep(0.3)\nprint({i} * {i})\n{i}" for i in range(5)]
    results = await asyncio.gather(*(sandbox.arun(code) for code in codes))
    assert [r.output for r in results] == [f"{i * i}\n{i}\n" for i in range(5)]
    assert all(r.ok for r in results)


async def test_runs_at_once_each_have_their_own_folder(method: str) -> None:
    sandbox = make_sandbox(method)
    code = "import os, time\nopen('mine.txt', 'w').write('{0}')\ntime.sleep(0.3)\nos.listdir('.')"
    results = await asyncio.gather(*(sandbox.arun(code.format(i)) for i in range(3)))
    assert [r.output for r in results] == ["['mine.txt']\n"] * 3


async def test_arun_gives_the_same_result_as_run(method: str) -> None:
    sandbox = make_sandbox(method)
    code = "print('草莓')\n1/0"
    ran, aran = sandbox.run(code), await sandbox.arun(code)
    assert (aran.output, aran.status, aran.error) == (ran.output, ran.status, ran.error)


async def test_cancelling_arun_kills_the_code(method: str) -> None:
    sandbox = make_sandbox(method, wall_seconds=60)
    task = asyncio.create_task(sandbox.arun("import time\nprint('started')\ntime.sleep(60)"))
    for _ in range(200):  # until the code runs
        if sandbox_processes():
            break
        await asyncio.sleep(0.02)
    assert sandbox_processes(), "the code never started"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sandbox_processes() == []  # killed by the time the cancel returns


async def test_a_slow_run_does_not_hold_up_a_quick_one(method: str) -> None:
    sandbox = make_sandbox(method, wall_seconds=60)
    slow = asyncio.create_task(sandbox.arun("import time\ntime.sleep(60)"))
    quick = await sandbox.arun("6 * 7")
    assert quick.output == "42\n"
    assert not slow.done()
    slow.cancel()
    with pytest.raises(asyncio.CancelledError):
        await slow
