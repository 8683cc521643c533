"""The store: directory cache, presence snapshot, history, item state. A SQLite file in the state directory
(the default), or a PostgreSQL database that several replicas share (``Store("postgresql://...")``); the
backends are in backend.py, _db.py (SQLite) and postgres.py, the tables in the modules below.

    Store(path or url)
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

One Store per process; its backend makes its use from the loops' worker threads safe. Whatever
a cycle compares against is held in memory after its first load, so the store reads the database once per
account and afterwards only writes what changed, batched in one transaction. Every failure is a StoreError.
Timestamps are stored as fixed-width UTC text ("2026-11-27T06:30:00.123456Z"), which sorts by time.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType

from sync.store._db import SCHEMA_VERSION, StoreError
from sync.store.backend import is_url, open_backend, redact_url
from sync.store.directory import DirectoryTables
from sync.store.items import ItemTables
from sync.store.presence import PresenceTables, StateKey
from sync.store.shapes import Refusal, ShapeTables

__all__ = ["SCHEMA_VERSION", "Refusal", "StateKey", "Store", "StoreError", "is_url", "redact_url"]


class Store(DirectoryTables, PresenceTables, ItemTables, ShapeTables):
    """The state directory's `presence-sync.sqlite` (or any path: created 0600), or a PostgreSQL database
    (a ``postgresql://`` URL): opened and migrated."""

    def __init__(self, location: str | os.PathLike[str]) -> None:
        self.url: str | None = str(location) if is_url(location) else None
        self.path: Path | None = None if self.url else Path(location)
        self._db = open_backend(location)
        self._dir_versions = {}
        self._snapshots = {}
        self._snapshot_versions = {}
        self._validation = {}
        self._validation_rows = {}
        self._written = {}
        self._pending_since = {}

    @property
    def schema_version(self) -> int:
        return self._db.schema_version()

    @property
    def dialect(self) -> str:
        return self._db.dialect

    @property
    def where(self) -> str:
        """The store's location as it may be shown: the path, or the URL without its password."""
        return self._db.where

    def forget(self, account_id: str) -> None:
        """Drop what is held in memory for the account (another replica may have written since): the next call
        reads it from the database again. Called when this replica takes an account over."""
        for cache in (self._dir_versions, self._snapshots, self._snapshot_versions, self._validation,
                      self._validation_rows, self._written, self._pending_since):
            cache.pop(account_id, None)  # type: ignore[attr-defined]

    def fence(self, account_id: str, replica: str, token: int, until: float | None = None) -> None:
        """Writes for the account must hold this lease token from now on, and stop at ``until``
        (``time.monotonic()``) unless ``extend`` moves it (PostgreSQL; a no-op for SQLite)."""
        self._db.fence(account_id, replica, token, until)

    def extend(self, account_id: str, until: float) -> None:
        """The account's lease was renewed: writes may go on until ``until`` (``time.monotonic()``)."""
        self._db.extend(account_id, until)

    def check_lease(self, account_id: str, what: str) -> None:
        """LeaseLost when this replica may have lost the account's lease by its own clock (a pause, a late
        renewal): called before a write that leaves the store (a CSV, SharePoint). Nothing for SQLite."""
        self._db.check_lease(account_id, what)

    def unfence(self, account_id: str) -> None:
        """Refuse the account's writes from now on (its lease is gone; PostgreSQL; a no-op for SQLite)."""
        self._db.unfence(account_id)

    def close(self) -> None:
        """Close the connection(s), after any write in flight."""
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
