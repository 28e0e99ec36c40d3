"""The SQLite store of chains: one row per chain, one row per finished step.

Several processes (the web page, ``thinkchain ask``, scripts) may write the same file at once,
so the database runs in WAL mode (readers never block the writer), every connection waits
for locks (``busy_timeout``) instead of failing at once, and every write is one short
``BEGIN IMMEDIATE`` transaction: a writer takes the lock before it reads anything, so two
writers can never deadlock upgrading a read lock.  Each finished step is committed on its
own, so a process killed in the middle of a chain loses at most the step it was generating.
"""

from __future__ import annotations

import builtins
import json
import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from thinkchain.chain.events import ChainError, FinalAnswer, Step, Usage
from thinkchain.folders import data_dir
from thinkchain.history.conversation import Conversation
from thinkchain.history.record import ChainRecord
from thinkchain.history.rows import record_from_row
from thinkchain.history.schema import CONVERSATION_OF, SCHEMA_VERSION, migrate, version

ENV_HISTORY = "THINKCHAIN_HISTORY"  # the database file itself
DEFAULT_FILENAME = "history.sqlite3"
ENV_TIMEOUT = "THINKCHAIN_HISTORY_TIMEOUT"  # seconds a write waits for a lock
DEFAULT_BUSY_TIMEOUT = 10.0  # seconds a write waits for another process's transaction


# Chains with the number of their steps, as the readers below select them.
_CHAINS = (
    "SELECT c.*, (SELECT COUNT(*) FROM steps s WHERE s.chain_id = c.id) AS step_count FROM chains c"
)


class HistoryError(Exception):
    """The history database cannot be opened, read or written.  The message is for people."""


def default_path() -> Path:
    configured = os.environ.get(ENV_HISTORY)
    if configured:
        return Path(configured).expanduser()
    return data_dir() / DEFAULT_FILENAME


def default_timeout() -> float:
    try:
        return float(os.environ.get(ENV_TIMEOUT, DEFAULT_BUSY_TIMEOUT))
    except ValueError:
        return DEFAULT_BUSY_TIMEOUT


def new_id() -> str:
    return uuid.uuid4().hex[:10]


def _describe(err: BaseException, path: Path) -> str:
    text = str(err)
    if "readonly" in text or "read-only" in text:
        return f"the history database {path} is read-only ({text})"
    if "locked" in text or "busy" in text:
        return f"the history database {path} is locked by another process ({text})"
    return f"the history database {path} cannot be used ({text})"


class HistoryStore:
    """A connection to one history database.  Safe to share between threads."""

    def __init__(self, path: Path | str | None = None, *, timeout: float | None = None) -> None:
        self.path = Path(path).expanduser() if path is not None else default_path()
        self.timeout = default_timeout() if timeout is None else timeout
        self._lock = threading.RLock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(
                self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False
            )
        except (OSError, sqlite3.Error) as err:
            raise HistoryError(_describe(err, self.path)) from None
        try:
            self._conn.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
            self._prepare()
        except sqlite3.Error as err:
            self._conn.close()
            raise HistoryError(_describe(err, self.path)) from None

    # -- connection ---------------------------------------------------------------------------

    def _prepare(self) -> None:
        """Create or migrate the schema and switch to WAL once; later opens read two pragmas."""
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                if version(self._conn) < SCHEMA_VERSION:
                    with self._write() as conn:
                        migrate(conn)
                if self._conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                    self._conn.execute("PRAGMA journal_mode = WAL")
                break
            except sqlite3.OperationalError as err:
                # Switching to WAL needs a moment alone with the file; another process
                # creating the same database at the same time makes it fail without waiting.
                if "locked" not in str(err) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self._conn.execute("PRAGMA synchronous = NORMAL")  # WAL: safe against process crashes

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _run_write(self, work: Any) -> None:
        try:
            with self._write() as conn:
                work(conn)
        except sqlite3.Error as err:
            raise HistoryError(_describe(err, self.path)) from None

    def _read(self, sql: str, args: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        try:
            with self._lock:
                cursor = self._conn.execute(sql, args)
                names = [d[0] for d in cursor.description]
                return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        except sqlite3.Error as err:
            raise HistoryError(_describe(err, self.path)) from None

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing (one transaction each) -------------------------------------------------------

    def start_chain(
        self,
        chain_id: str,
        question: str,
        *,
        lang: str = "",
        model: str = "",
        mode: str = "",
        backend: str = "",
        source: str = "",
        settings: dict[str, Any] | None = None,
        paired_with: str | None = None,
        created_at: float | None = None,
        conversation: str | None = None,
    ) -> None:
        """``conversation``: the id of the conversation's first chain (default: the chain it
        is paired with, else its own)."""
        now = time.time() if created_at is None else created_at
        row = (
            chain_id,
            now,
            now,
            question,
            lang,
            model,
            mode,
            backend,
            source,
            json.dumps(settings or {}, ensure_ascii=False),
            "running",
            paired_with,
            os.getpid(),
            socket.gethostname(),
            conversation or paired_with or chain_id,
        )
        self._run_write(
            lambda conn: conn.execute(
                "INSERT INTO chains (id, created_at, updated_at, question, lang, model, mode,"
                " backend, source, settings, status, paired_with, pid, host, conversation)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
        )

    def add_step(self, chain_id: str, step: Step) -> None:
        data = json.dumps(step.to_dict(), ensure_ascii=False)

        def work(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT OR REPLACE INTO steps (chain_id, idx, data) VALUES (?, ?, ?)",
                (chain_id, step.index, data),
            )
            conn.execute("UPDATE chains SET updated_at = ? WHERE id = ?", (time.time(), chain_id))

        self._run_write(work)

    def set_answer(self, chain_id: str, answer: FinalAnswer) -> None:
        data = json.dumps(answer.to_dict(), ensure_ascii=False)
        self._run_write(
            lambda conn: conn.execute(
                "UPDATE chains SET answer = ?, updated_at = ? WHERE id = ?",
                (data, time.time(), chain_id),
            )
        )

    def finish_chain(
        self,
        chain_id: str,
        *,
        status: str,
        error: ChainError | None,
        seconds: float,
        usage: Usage,
        stats: dict[str, Any],
        question: str | None = None,
        lang: str | None = None,
    ) -> None:
        values = (
            status,
            None if error is None else json.dumps(error.to_dict(), ensure_ascii=False),
            seconds,
            json.dumps(usage.to_dict()),
            json.dumps(stats),
            time.time(),
        )

        def work(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE chains SET status = ?, error = ?, seconds = ?, usage = ?, stats = ?,"
                " updated_at = ? WHERE id = ?",
                (*values, chain_id),
            )
            # The chain cleans the question (control characters, whitespace) and resolves
            # "auto" to a language only once it runs: keep what was really asked.
            if question is not None:
                conn.execute("UPDATE chains SET question = ? WHERE id = ?", (question, chain_id))
            if lang is not None:
                conn.execute("UPDATE chains SET lang = ? WHERE id = ?", (lang, chain_id))

        self._run_write(work)

    def delete(self, chain_id: str) -> bool:
        """Delete a chain, its steps and the direct answer paired with it."""
        deleted: list[int] = []

        def work(conn: sqlite3.Connection) -> None:
            paired = conn.execute("SELECT id FROM chains WHERE paired_with = ?", (chain_id,))
            for one in [chain_id, *(row[0] for row in paired.fetchall())]:
                conn.execute("DELETE FROM steps WHERE chain_id = ?", (one,))
                deleted.append(conn.execute("DELETE FROM chains WHERE id = ?", (one,)).rowcount)

        self._run_write(work)
        return bool(deleted and deleted[0])

    # -- reading ------------------------------------------------------------------------------

    def list(self, limit: int | None = 50, *, include_paired: bool = False) -> list[ChainRecord]:
        """The newest chains first, without their steps (``step_count`` says how many)."""
        where = "" if include_paired else "WHERE c.paired_with IS NULL"
        rows = self._read(
            f"{_CHAINS} {where} ORDER BY c.created_at DESC, c.rowid DESC LIMIT ?",
            (-1 if limit is None else limit,),
        )
        return [record_from_row(row, steps=[]) for row in rows]

    def conversations(self, limit: int | None = 30) -> builtins.list[Conversation]:
        """The conversations, the one with the newest turn first; their turns (without steps)
        oldest first."""
        rows = self._read(
            f"WITH heads AS (SELECT {CONVERSATION_OF} AS head, MAX(created_at) AS last"
            " FROM chains WHERE paired_with IS NULL GROUP BY head ORDER BY last DESC LIMIT ?)"
            f" {_CHAINS} JOIN heads ON heads.head = {CONVERSATION_OF}"
            " WHERE c.paired_with IS NULL ORDER BY heads.last DESC, c.created_at, c.rowid",
            (-1 if limit is None else limit,),
        )
        found: dict[str, Conversation] = {}
        for row in rows:
            turn = record_from_row(row, steps=[])
            found.setdefault(turn.conversation, Conversation(turn.conversation)).turns.append(turn)
        return list(found.values())

    def conversation(self, conversation_id: str) -> Conversation | None:
        """Every turn of one conversation, oldest first, with its steps and direct answer."""
        rows = self._read(
            "SELECT id FROM chains WHERE paired_with IS NULL"
            " AND (conversation = ? OR (conversation IS NULL AND id = ?))"
            " ORDER BY created_at, rowid",
            (conversation_id, conversation_id),
        )
        turns = [turn for turn in map(self.get, (row["id"] for row in rows)) if turn is not None]
        return Conversation(conversation_id, turns) if turns else None

    def get(self, chain_id: str) -> ChainRecord | None:
        rows = self._read(f"{_CHAINS} WHERE c.id = ?", (chain_id,))
        if not rows:
            return None
        steps = [
            Step.from_dict(json.loads(row["data"]))
            for row in self._read(
                "SELECT data FROM steps WHERE chain_id = ? ORDER BY idx", (chain_id,)
            )
        ]
        record = record_from_row(rows[0], steps=steps)
        paired = self._read("SELECT id FROM chains WHERE paired_with = ? LIMIT 1", (chain_id,))
        if paired:
            record.paired = self.get(paired[0]["id"])
        return record

    def resolve(self, prefix: str) -> str:
        """The full id of the one chain whose id starts with ``prefix``."""
        prefix = prefix.strip()
        if not prefix:
            raise HistoryError("no chain id given")
        rows = self._read(
            "SELECT id FROM chains WHERE id >= ? AND id < ? ORDER BY id LIMIT 2",
            (prefix, prefix + "\uffff"),
        )
        if not rows:
            raise HistoryError(f"no chain with id {prefix!r} in {self.path}")
        if len(rows) > 1:
            raise HistoryError(f"the id {prefix!r} matches several chains; give more characters")
        return str(rows[0]["id"])
