"""``thinkchain history``: list, show, export and delete past chains (the page's store too)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from thinkchain.chain.text import format_seconds
from thinkchain.cli.options import err_console, fail
from thinkchain.history import HistoryError, HistoryStore, to_json, to_markdown
from thinkchain.history.store import ENV_HISTORY

HistoryOpt = Annotated[
    str | None,
    typer.Option(
        "--history",
        envvar=ENV_HISTORY,
        help="The history database (default: history.sqlite3 in the user's data folder).",
        show_default=False,
    ),
]

history_app = typer.Typer(help="Past chains, kept by the web page and `ask`.", no_args_is_help=True)


def _store(path: str | None) -> HistoryStore:
    try:
        return HistoryStore(path)
    except HistoryError as err:
        fail(str(err), code=1)


def _plain(text: str) -> str:
    """Text for one table cell: on one line, without terminal control characters."""
    flat = " ".join(text.split())
    return "".join(ch for ch in flat if ch.isprintable())


@history_app.command("list")
def list_chains(
    limit: Annotated[int, typer.Option(help="Show at most this many, newest first.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document.")] = False,
    history: HistoryOpt = None,
) -> None:
    """The newest chains: id, when, status, steps, time and question (one line each)."""
    with _store(history) as store:
        try:
            records = store.list(limit=limit)
        except HistoryError as err:
            fail(str(err), code=1)
    if as_json:
        rows = [
            {
                "id": r.id,
                "created_at": r.created_at,
                "status": r.status,
                "steps": r.step_count,
                "seconds": r.seconds,
                "model": r.model,
                "question": r.question,
            }
            for r in records
        ]
        sys.stdout.write(json.dumps(rows, ensure_ascii=False, indent=2) + "\n")
        return
    if not records:
        err_console.print(f"no chains yet in {store.path}")
        return
    # Plain lines, one per chain, whatever the terminal's width: easy to read and to grep.
    sys.stdout.write(f"{'id':<10}  {'when':<16}  {'status':<14} steps  {'time':>9}  question\n")
    for record in records:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(record.created_at))
        seconds = format_seconds(record.seconds) if record.seconds is not None else "-"
        question = _plain(record.question)
        if len(question) > 80:
            question = question[:79] + "…"
        sys.stdout.write(
            f"{record.id:<10}  {when:<16}  {record.status:<14} {record.step_count:>5}  "
            f"{seconds:>9}  {question}\n"
        )


@history_app.command("show")
def show(
    chain_id: Annotated[str, typer.Argument(metavar="ID", help="A chain's id (or its start).")],
    history: HistoryOpt = None,
) -> None:
    """Print one chain: its question, every step, the answer and the times (as Markdown)."""
    sys.stdout.write(_markdown_of(chain_id, history))


def _markdown_of(chain_id: str, history: str | None) -> str:
    with _store(history) as store:
        try:
            record = store.get(store.resolve(chain_id))
        except HistoryError as err:
            fail(str(err), code=1)
    assert record is not None
    return to_markdown(record)


@history_app.command("export")
def export(
    chain_id: Annotated[str, typer.Argument(metavar="ID", help="A chain's id (or its start).")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="md or json.")] = "md",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file, not stdout.")
    ] = None,
    history: HistoryOpt = None,
) -> None:
    """Write one chain as Markdown or JSON."""
    if fmt not in ("md", "json"):
        fail(f"unknown format {fmt!r}: use md or json")
    with _store(history) as store:
        try:
            record = store.get(store.resolve(chain_id))
        except HistoryError as err:
            fail(str(err), code=1)
    assert record is not None
    text = to_markdown(record) if fmt == "md" else to_json(record)
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        err_console.print(f"wrote {output}")


@history_app.command("rm")
def rm(
    chain_ids: Annotated[list[str], typer.Argument(metavar="ID...", help="Chains to delete.")],
    history: HistoryOpt = None,
) -> None:
    """Delete chains (with the direct answers compared with them)."""
    with _store(history) as store:
        try:
            for chain_id in chain_ids:
                full = store.resolve(chain_id)
                store.delete(full)
                err_console.print(f"deleted {full}")
        except HistoryError as err:
            fail(str(err), code=1)
