"""The output folder: presence.csv, presence_history.csv and validation.csv for every account.

Loops of several accounts write here from worker threads; one lock keeps each file's writes in order.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sync.models import Change, Presence, ValidationRow
from sync.outputs.csv import PresenceCsv, append_history_csv, write_validation_csv

__all__ = ["Outputs"]


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
        with self._lock:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            self.validation[account_id] = rows
            write_validation_csv(self.validation_csv,
                                 [(acc, v) for acc in sorted(self.validation) for v in self.validation[acc]],
                                 self.encoding)
        if self.on_validation is not None:
            self.on_validation()
