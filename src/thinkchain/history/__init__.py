"""The history of chains: a SQLite store several processes share, and a recorder fed by events.

recorder = ChainRecorder(source="script", settings=settings)
for event in chain.stream(question):
    recorder.handle(event)
recorder.close()
HistoryStore().get(recorder.chain_id)  # the chain as it was
"""

from __future__ import annotations

from thinkchain.folders import ENV_DATA_DIR, data_dir
from thinkchain.history.conversation import Conversation
from thinkchain.history.export import conversation_json, conversation_markdown, to_json, to_markdown
from thinkchain.history.record import COMPLETED, INTERRUPTED, RUNNING, ChainRecord
from thinkchain.history.recorder import ChainRecorder
from thinkchain.history.store import (
    ENV_HISTORY,
    HistoryError,
    HistoryStore,
    default_path,
    new_id,
)

__all__ = [
    "COMPLETED",
    "ENV_DATA_DIR",
    "ENV_HISTORY",
    "INTERRUPTED",
    "RUNNING",
    "ChainRecord",
    "ChainRecorder",
    "Conversation",
    "HistoryError",
    "HistoryStore",
    "conversation_json",
    "conversation_markdown",
    "data_dir",
    "default_path",
    "new_id",
    "to_json",
    "to_markdown",
]
