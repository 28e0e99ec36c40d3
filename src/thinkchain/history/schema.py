"""The history database's tables, and the migration that brings older files up to them.

Version 1 kept chains and their steps.  Version 2 adds ``chains.conversation``: the id of the
conversation a chain is a turn of, which is the id of the conversation's first chain.  A chain
kept before conversations existed is a conversation of its own, so a version-1 file reads
exactly as it did.
"""

from __future__ import annotations

import sqlite3

SCHEMA_VERSION = 2

_TABLES = """
CREATE TABLE IF NOT EXISTS chains (
    id           TEXT PRIMARY KEY,
    created_at   REAL NOT NULL,
    updated_at   REAL NOT NULL,
    question     TEXT NOT NULL,
    lang         TEXT NOT NULL DEFAULT '',
    model        TEXT NOT NULL DEFAULT '',
    mode         TEXT NOT NULL DEFAULT '',
    backend      TEXT NOT NULL DEFAULT '',
    source       TEXT NOT NULL DEFAULT '',
    settings     TEXT NOT NULL DEFAULT '{}',
    status       TEXT NOT NULL,
    error        TEXT,
    answer       TEXT,
    seconds      REAL,
    usage        TEXT,
    stats        TEXT,
    paired_with  TEXT,
    pid          INTEGER,
    host         TEXT,
    conversation TEXT
);
CREATE INDEX IF NOT EXISTS chains_by_time ON chains (created_at DESC);
CREATE INDEX IF NOT EXISTS chains_by_pair ON chains (paired_with);
CREATE TABLE IF NOT EXISTS steps (
    chain_id TEXT NOT NULL,
    idx      INTEGER NOT NULL,
    data     TEXT NOT NULL,
    PRIMARY KEY (chain_id, idx)
)
"""

# The conversation a row belongs to, also for rows written by an older thinkchain into a
# migrated file (they leave the column empty): a direct answer's is its chain's.
CONVERSATION_OF = "COALESCE(conversation, paired_with, id)"


def version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection) -> None:
    """Create or upgrade the schema; runs inside the caller's write transaction."""
    if version(conn) >= SCHEMA_VERSION:
        return  # another process got there first, between our check and our lock
    # One statement at a time: executescript() would commit the caller's transaction.
    for statement in _TABLES.split(";"):
        if statement.strip():
            conn.execute(statement)
    columns = {row[1] for row in conn.execute("PRAGMA table_info(chains)")}
    if "conversation" not in columns:
        conn.execute("ALTER TABLE chains ADD COLUMN conversation TEXT")
    conn.execute(f"UPDATE chains SET conversation = {CONVERSATION_OF} WHERE conversation IS NULL")
    conn.execute("CREATE INDEX IF NOT EXISTS chains_by_conversation ON chains (conversation)")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
