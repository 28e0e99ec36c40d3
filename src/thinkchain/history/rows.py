"""Rows of the history database read back as records."""

from __future__ import annotations

import json
import os
import socket
from typing import Any

from thinkchain.chain.events import ChainError, FinalAnswer, Step, Usage
from thinkchain.history.record import INTERRUPTED, RUNNING, ChainRecord


def pid_alive(pid: int | None, host: str | None) -> bool | None:
    """Whether the process that wrote a chain still runs (None: it ran on another machine)."""
    if pid is None or host != socket.gethostname():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def record_from_row(row: dict[str, Any], *, steps: list[Step]) -> ChainRecord:
    status = row["status"]
    # A chain still marked running whose process is gone was killed mid-chain.
    if status == RUNNING and pid_alive(row["pid"], row["host"]) is False:
        status = INTERRUPTED
    error = _loads(row["error"])
    answer = _loads(row["answer"])
    usage = _loads(row["usage"])
    return ChainRecord(
        id=row["id"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        question=row["question"],
        lang=row["lang"],
        model=row["model"],
        mode=row["mode"],
        backend=row["backend"],
        source=row["source"],
        settings=json.loads(row["settings"] or "{}"),
        status=status,
        error=None
        if error is None
        else ChainError(error["kind"], error["message"], error["server"]),
        steps=steps,
        step_count=int(row.get("step_count") or len(steps)),
        answer=None if answer is None else FinalAnswer.from_dict(answer),
        seconds=row["seconds"],
        usage=None if usage is None else Usage.from_dict(usage),
        stats=_loads(row["stats"]) or {},
        paired_with=row["paired_with"],
        conversation=row.get("conversation") or row["paired_with"] or row["id"],
    )
