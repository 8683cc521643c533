"""Where a cycle's results go besides SharePoint: CSV files (and, later, reports)."""

from __future__ import annotations

from sync.outputs.csv import (
    CYCLE_COLUMNS,
    HISTORY_COLUMNS,
    PRESENCE_COLUMNS,
    SNAPSHOT_COLUMNS,
    VALIDATION_COLUMNS,
    append_history_csv,
    atomic_write,
    format_utc,
    guard_cell,
    write_presence_csv,
    write_validation_csv,
)

__all__ = [
    "CYCLE_COLUMNS",
    "HISTORY_COLUMNS",
    "PRESENCE_COLUMNS",
    "SNAPSHOT_COLUMNS",
    "VALIDATION_COLUMNS",
    "append_history_csv",
    "atomic_write",
    "format_utc",
    "guard_cell",
    "write_presence_csv",
    "write_validation_csv",
]
