"""Per-item results, one JSON line each, appended the moment an item finishes.

The file is the run's memory: ``--resume`` reads it to skip what is done, and the summary is
always recomputed from it.  Lines are flushed and synced one by one, so a crash or a kill
loses only the items still in flight; a line torn by a crash in mid-write is ignored (and its
item runs again).  When an (id, mode) pair appears twice, the later line wins.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import IO, Any


@dataclass
class Record:
    id: str
    mode: str
    gold: str | None  # the normalised reference answer
    prediction: str | None  # the normalised answer read from the model (None: unreadable)
    correct: bool
    steps: int = 0  # reasoning steps (for sc: of every sample together)
    prompt_tokens: int = 0
    completion_tokens: int = 0  # generated tokens, every call of the item together
    cached_tokens: int = 0
    seconds: float = 0.0  # wall time of the item
    started_at: float = 0.0  # Unix time the item started (shows overlap under --concurrency)
    error: str | None = None  # the error kind of a failed item (it counts as incorrect)
    error_message: str | None = None
    answer: str | None = None  # the model's final-answer text, so it can be read or rescored
    level: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # per-mode details (votes, checks)

    @property
    def key(self) -> tuple[str, str]:
        return (self.id, self.mode)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["seconds"] = round(self.seconds, 3)
        data["started_at"] = round(self.started_at, 3)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Record:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        return cls(**values)


@dataclass
class Loaded:
    records: dict[tuple[str, str], Record]  # the latest record of each (id, mode)
    damaged_lines: int  # lines that could not be read (a torn last line after a crash)


class ResultsFile:
    """Append-only JSONL of :class:`Record`; safe to read while nothing is writing."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: IO[str] | None = None

    def exists(self) -> bool:
        return self.path.is_file() and self.path.stat().st_size > 0

    def load(self) -> Loaded:
        records: dict[tuple[str, str], Record] = {}
        damaged = 0
        if not self.path.is_file():
            return Loaded(records, 0)
        with self.path.open(encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if not line.strip():
                    continue
                try:
                    record = Record.from_dict(json.loads(line))
                except (ValueError, TypeError):
                    damaged += 1
                    continue
                records[record.key] = record
        return Loaded(records, damaged)

    def append(self, record: Record) -> None:
        if self._handle is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            torn = self._ends_without_newline()
            self._handle = self.path.open("a", encoding="utf-8")
            if torn:  # a crash cut the last line: start ours on a line of its own
                self._handle.write("\n")
        self._handle.write(json.dumps(record.to_dict(), ensure_ascii=False) + "\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def _ends_without_newline(self) -> bool:
        if not self.exists():
            return False
        with self.path.open("rb") as fh:
            fh.seek(-1, os.SEEK_END)
            return fh.read(1) != b"\n"
