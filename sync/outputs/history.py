"""presence_history.csv catches up with the store at start-up.

A tick commits its transitions to SQLite first and appends them to presence_history.csv second; a process killed
between the two leaves the CSV without that tick's rows. At the next start the rows the store has from the CSV's
last timestamp on, and the CSV's tail lacks, are appended, so the CSV never misses a transition the store kept
(and nothing is written twice: the comparison is on whole rows).
"""

from __future__ import annotations

import csv
import io
import logging
import os
from datetime import datetime
from pathlib import Path

from ..models import Change
from ..store import Store
from .csv import _history_rows, append_history_csv

__all__ = ["catch_up_history"]

log = logging.getLogger(__name__)

TAIL = 512 * 1024  # bytes of the CSV's end compared with the store: far more than one tick of every account


def _tail_rows(path: Path) -> list[tuple[str, ...]]:
    """The whole rows at the end of the CSV (the first, possibly partial, line of the tail is dropped)."""
    with path.open("rb") as fh:
        size = fh.seek(0, os.SEEK_END)
        start = max(0, size - TAIL)
        fh.seek(start)
        data = fh.read()
    if start:
        text = data.decode("utf-8", errors="replace").partition("\n")[2]
    else:  # the whole file: a byte-order mark (CsvEncoding utf-8-sig) is not part of the header
        text = data.decode("utf-8-sig", errors="replace")
    rows = [tuple(r) for r in csv.reader(io.StringIO(text)) if r]
    return [r for r in rows if r and r[0] != "account_id"]


def catch_up_history(path: Path, store: Store, encoding: str = "utf-8", *, account: str | None = None,
                     also: Path | None = None) -> int:
    """Append the transitions the store has and presence_history.csv lacks at its end; returns how many.
    ``account``: only that account's (``path`` is its own history); ``also``: the same rows appended there too
    (the whole folder's history, with several replicas)."""
    if not path.exists() or path.stat().st_size == 0:
        return 0  # a new (or deliberately removed) file starts with the next transition
    tail = _tail_rows(path)
    if not tail:
        return 0
    last = max(r[-1] for r in tail)  # changed_at_utc: fixed-width UTC text, sorts by time
    since = datetime.fromisoformat(last.replace("Z", "+00:00"))
    have = set(tail)
    changes: list[Change] = list(store.history(accounts=[account] if account is not None else None, since=since))
    missing = [c for c, row in zip(changes, _history_rows(changes), strict=True)
               if tuple(str(x) for x in row) not in have]
    if missing:
        append_history_csv(path, missing, encoding)
        if also is not None:
            append_history_csv(also, missing, encoding)
        log.warning("%s lacked %d transition(s) the store has (the job was stopped between the two writes); "
                    "appended them", path.name, len(missing))
    return len(missing)
