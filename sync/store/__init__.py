"""The local SQLite store in the state directory: directory cache, presence snapshot, history, item state.

    Store(path)
    ├── directory   users, directory_state        upsert_users, delete_users, load_directory,
    │                                             get/set_delta_link, directory_version, reset_directory
    ├── presence    current, transitions, cycles  apply_presences (the diff), snapshot(_version),
    │                                             record_cycle, history, snapshots, cycles
    └── items       validation, writeback,        save_validation, load_validation,
                    writeback_pending,            writeback_pending, writeback_queue, mark_written,
                    validation_runs               reset_writeback; a validation_runs row (finding counts)
                                                  whenever the verdicts change
    └── shapes      refused_shapes                load_refusals, save_refusal, forget_refusals: request shapes
                                                  the tenant refused (graph/shapes.py)

One Store (one connection) per process; a lock makes its use from the loops' worker threads serial. Whatever
a cycle compares against is held in memory after its first load, so the store reads SQLite once per
account and afterwards only writes what changed, batched in one transaction. Every failure is a StoreError.
Timestamps are stored as fixed-width UTC text ("2026-11-27T06:30:00.123456Z"), which sorts by time.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from types import TracebackType

from sync.store._db import SCHEMA_VERSION, StoreError, connect
from sync.store.directory import DirectoryTables
from sync.store.items import ItemTables
from sync.store.presence import PresenceTables, StateKey
from sync.store.shapes import Refusal, ShapeTables

__all__ = ["SCHEMA_VERSION", "Refusal", "StateKey", "Store", "StoreError"]


class Store(DirectoryTables, PresenceTables, ItemTables, ShapeTables):
    """The state directory's `presence-sync.sqlite` (or any path): opened, created 0600 and migrated."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._conn = connect(self.path)
        self._lock = threading.RLock()
        self._dir_versions = {}
        self._snapshots = {}
        self._snapshot_versions = {}
        self._validation = {}
        self._validation_rows = {}
        self._written = {}
        self._pending_since = {}

    @property
    def schema_version(self) -> int:
        return int(self._read("PRAGMA user_version")[0][0])

    def close(self) -> None:
        """Close the connection (the WAL is checkpointed by SQLite on the last close), after any write in flight."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
