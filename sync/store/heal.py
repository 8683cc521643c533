"""A damaged store: set it aside, start a new one, keep the history that can still be read.

The store holds caches (the directory, the presence snapshot, validation and write-back state) that the job
reads again from Graph and SharePoint, and history (presence transitions and cycles) that nothing can bring
back. So a store SQLite calls damaged ("file is not a database", "database disk image is malformed", or a
failed ``PRAGMA quick_check``) is never deleted and never used: it is renamed ``<name>.damaged-<UTC time>``
(its ``-wal`` and ``-shm`` beside it), a new store is created, and every history row that can still be read
is copied into it. What happened, and where the old file is, is returned for the log.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

__all__ = ["HISTORY_TABLES", "is_damage", "quick_check", "salvage", "set_aside"]

HISTORY_TABLES = ("transitions", "cycles", "validation_runs")  # what Microsoft 365 cannot give back
_DAMAGE = ("file is not a database", "malformed", "corrupt", "not a database")


def is_damage(exc: BaseException) -> bool:
    """Whether SQLite says the file itself is damaged (not locked, not a permission problem)."""
    return isinstance(exc, sqlite3.DatabaseError) and any(m in str(exc).lower() for m in _DAMAGE)


def quick_check(conn: sqlite3.Connection) -> str:
    """'' when SQLite's quick check passes, else its first complaint."""
    rows = conn.execute("PRAGMA quick_check(5)").fetchall()
    first = str(rows[0][0]) if rows else "no answer"
    return "" if first == "ok" else first


def set_aside(path: Path, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> Path:
    """Rename the store (and its -wal, -shm) out of the way; returns the new name of the main file."""
    stamp = now().strftime("%Y%m%dT%H%M%SZ")
    aside = path.with_name(f"{path.name}.damaged-{stamp}")
    n = 1
    while aside.exists():
        n += 1
        aside = path.with_name(f"{path.name}.damaged-{stamp}-{n}")
    for extra in ("-wal", "-shm"):
        side = Path(f"{path}{extra}")
        if side.exists():
            os.replace(side, Path(f"{aside}{extra}"))
    os.replace(path, aside)
    return aside


def salvage(aside: Path, conn: sqlite3.Connection) -> tuple[int, list[str]]:
    """Copy every readable history row of the damaged file into ``conn`` (a new, migrated store).

    Returns (rows copied, tables that could not be read whole)."""
    copied = 0
    lost: list[str] = []
    try:
        old = sqlite3.connect(f"file:{aside}?mode=ro", uri=True)
    except sqlite3.Error:
        return 0, list(HISTORY_TABLES)
    try:
        for table in HISTORY_TABLES:
            try:
                columns = [str(r[1]) for r in conn.execute(f"PRAGMA table_info({table})")]
                have = {str(r[1]) for r in old.execute(f"PRAGMA table_info({table})")}
                if not have:
                    lost.append(table)
                    continue
                keep = [c for c in columns if c in have]
                rows = old.execute(f"SELECT {', '.join(keep)} FROM {table}").fetchall()
            except sqlite3.Error:
                lost.append(table)
                continue
            marks = ", ".join("?" * len(keep))
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(f"INSERT INTO {table} ({', '.join(keep)}) VALUES ({marks})", rows)
            conn.execute("COMMIT")
            copied += len(rows)
    finally:
        old.close()
    return copied, lost
