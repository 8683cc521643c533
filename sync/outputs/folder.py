"""The output folder: presence.csv, presence_history.csv and validation.csv for every account.

Loops of several accounts write here from worker threads; one lock keeps each file's writes in order. With
several replicas (``shared``), each account also has its own files and the whole-folder ones are built from
them (shared.py), under a lock that holds across processes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sync.models import Change, Presence, ValidationRow
from sync.outputs.csv import (
    PRESENCE_COLUMNS,
    VALIDATION_COLUMNS,
    PresenceCsv,
    append_history_csv,
    write_validation_csv,
)
from sync.outputs.history import catch_up_history
from sync.outputs.shared import account_dir, folder_lock, merge_csv
from sync.store import Store

__all__ = ["MERGE_EVERY", "Outputs"]

MERGE_EVERY = 1.0  # seconds: the whole-folder presence.csv of several replicas is rebuilt at most this often


@dataclass
class Outputs:
    # The big fields stay out of repr(): asyncio formats the finished main task (and with it the JobReport
    # holding this) when ``asyncio.run`` ends, and 30,000 Presence reprs cost 60 MB of memory for a moment.
    out_dir: Path
    encoding: str = "utf-8"  # CsvEncoding / --csv-encoding: utf-8, or utf-8-sig for Excel
    presences: dict[str, Sequence[Presence]] = field(default_factory=dict, repr=False)
    validation: dict[str, Sequence[ValidationRow]] = field(default_factory=dict, repr=False)
    observed_at: dict[str, datetime] = field(default_factory=dict, repr=False)
    on_validation: Callable[[], None] | None = field(default=None, repr=False)  # after validation.csv
    # Several replicas: raises LeaseLost when the account's lease may have passed on (no row is written then).
    may_write: Callable[[str, str], None] | None = field(default=None, repr=False)
    # Several replicas: per-account files in accounts/<id>/, the whole-folder files built from those of these
    # accounts (every configured one, whichever replica holds it).
    shared: bool = False
    accounts: Sequence[str] = ()
    _account_csvs: dict[str, PresenceCsv] = field(default_factory=dict, repr=False)
    _merged_at: float = field(default=float("-inf"), repr=False)
    _merge_pending: bool = field(default=False, repr=False)
    _presence_csv: PresenceCsv | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def presence_csv(self) -> Path:
        return self.out_dir / "presence.csv"

    @property
    def history_csv(self) -> Path:
        return self.out_dir / "presence_history.csv"

    @property
    def validation_csv(self) -> Path:
        return self.out_dir / "validation.csv"

    def tick(self, account_id: str, presences: Sequence[Presence], observed_at: datetime,
             changes: Sequence[Change]) -> None:
        """One presence tick of one account: its transitions appended, presence.csv rewritten."""
        if self.may_write is not None:
            self.may_write(account_id, "presence.csv")
        if self.shared:
            return self._shared_tick(account_id, presences, observed_at, changes)
        with self._lock:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            if changes:
                append_history_csv(self.history_csv, changes, self.encoding)
            self.presences[account_id] = presences
            self.observed_at[account_id] = observed_at
            if self._presence_csv is None:
                self._presence_csv = PresenceCsv(self.presence_csv, self.encoding)
            self._presence_csv.write([p for acc in sorted(self.presences) for p in self.presences[acc]],
                                     self.observed_at)

    def set_validation(self, account_id: str, rows: Sequence[ValidationRow]) -> None:
        """New verdicts for one account: validation.csv rewritten for all accounts."""
        if self.may_write is not None:
            self.may_write(account_id, "validation.csv")
        with self._lock:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            self.validation[account_id] = rows
            if self.shared:
                with folder_lock(self.out_dir):
                    write_validation_csv(self.account_dir(account_id) / "validation.csv",
                                         [(account_id, v) for v in rows], self.encoding)
                    merge_csv(self.validation_csv, self._parts("validation.csv"), VALIDATION_COLUMNS,
                              self.encoding)
            else:
                write_validation_csv(self.validation_csv,
                                     [(acc, v) for acc in sorted(self.validation) for v in self.validation[acc]],
                                     self.encoding)
        if self.on_validation is not None:
            self.on_validation()

    def account_dir(self, account_id: str) -> Path:
        """Several replicas: the account's own folder (accounts/<id>/)."""
        return account_dir(self.out_dir, account_id)

    def _parts(self, name: str) -> list[Path]:
        return [self.account_dir(acc) / name for acc in sorted(self.accounts)]

    def _shared_tick(self, account_id: str, presences: Sequence[Presence], observed_at: datetime,
                     changes: Sequence[Change]) -> None:
        with self._lock, folder_lock(self.out_dir):
            own = self.account_dir(account_id)
            if changes:
                append_history_csv(own / "presence_history.csv", changes, self.encoding)
                append_history_csv(self.history_csv, changes, self.encoding)
            self.presences[account_id] = presences
            self.observed_at[account_id] = observed_at
            csv = self._account_csvs.get(account_id)
            if csv is None:
                csv = self._account_csvs[account_id] = PresenceCsv(own / "presence.csv", self.encoding)
            csv.write(presences, {account_id: observed_at})
            # Rebuilt at most once a second: every account's tick would otherwise read and write every row of
            # every account (30,000 rows, ten times a second at 10 accounts).
            now = time.monotonic()
            if now - self._merged_at >= MERGE_EVERY:
                self._merged_at, self._merge_pending = now, False
                merge_csv(self.presence_csv, self._parts("presence.csv"), PRESENCE_COLUMNS, self.encoding)
            else:
                self._merge_pending = True

    def flush(self) -> None:
        """Several replicas: the whole-folder presence.csv rebuilt now if a tick's rows are not in it yet."""
        if not self.shared or not self._merge_pending:
            return
        with self._lock, folder_lock(self.out_dir):
            self._merge_pending, self._merged_at = False, time.monotonic()
            merge_csv(self.presence_csv, self._parts("presence.csv"), PRESENCE_COLUMNS, self.encoding)

    def catch_up(self, account_id: str, store: Store) -> int:
        """Several replicas, on taking an account: the transitions the store has for it and its own history
        lacks (its last holder died between the two writes) are appended to both histories; returns how many."""
        with self._lock, folder_lock(self.out_dir):
            if self.may_write is not None:
                self.may_write(account_id, "presence_history.csv")
            return catch_up_history(self.account_dir(account_id) / "presence_history.csv", store, self.encoding,
                                    account=account_id, also=self.history_csv)
