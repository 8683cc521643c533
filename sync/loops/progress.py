"""How long work reports how far it has come: a progress bar on a terminal (``cli``), else these log lines."""

from __future__ import annotations

import logging
import time
from typing import Protocol

__all__ = ["DirectoryProgress", "LogProgress"]

log = logging.getLogger("sync.loops.roster")


class DirectoryProgress(Protocol):
    """Where long work reports how far it has come (a bar on a terminal, else log lines): a cold start's directory
    read (start, advance, finish) and a large write-back round such as the first fill (fill, fill_done)."""

    def start(self, account_id: str, partitions: int) -> None: ...
    def advance(self, account_id: str, users: int, partitions_done: int) -> None: ...
    def finish(self, account_id: str, users: int, seconds: float) -> None: ...
    def fill(self, account_id: str, written: int, total: int) -> None: ...
    def fill_done(self, account_id: str, written: int, total: int, seconds: float) -> None: ...


class LogProgress:
    """Progress as INFO lines, at most one every ``every`` seconds per account."""

    def __init__(self, every: float = 2.0) -> None:
        self.every = every
        self._last: dict[str, float] = {}
        self._total: dict[str, int] = {}

    def start(self, account_id: str, partitions: int) -> None:
        self._total[account_id] = partitions
        self._last[account_id] = time.monotonic()
        log.info("account %s: reading the directory (no cache yet)", account_id)

    def advance(self, account_id: str, users: int, partitions_done: int) -> None:
        now = time.monotonic()
        if now - self._last.get(account_id, 0.0) >= self.every:
            self._last[account_id] = now
            log.info("account %s: directory %d users read, %d/%d partitions done", account_id, users,
                     partitions_done, self._total.get(account_id, 0))

    def finish(self, account_id: str, users: int, seconds: float) -> None:
        log.info("account %s: directory read: %d users in %.1f s", account_id, users, seconds)

    def fill(self, account_id: str, written: int, total: int) -> None:
        now = time.monotonic()
        key = "fill:" + account_id
        if key not in self._last:
            self._last[key] = now
        elif now - self._last[key] >= self.every:
            self._last[key] = now
            log.info("account %s: write-back: %d of %d items written (%.0f%%)", account_id, written, total,
                     100.0 * written / max(1, total))

    def fill_done(self, account_id: str, written: int, total: int, seconds: float) -> None:
        self._last.pop("fill:" + account_id, None)  # the round's own line says how it ended
