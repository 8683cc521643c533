"""`run --report`: report.html rebuilt whenever the verdicts change, never on the presence path.

``notify()`` only sets a flag (the roster loop calls it after writing validation.csv). A worker thread rebuilds
at most once every ``every`` seconds, and once more on close when a change is still pending, by running
`presence-sync report` in a child process: a week of history of 30,000 agents takes pandas seconds of CPU and
hundreds of MB, which must not compete with the presence loop for the interpreter lock or stay in the job's
memory. A failed build is logged and retried at the next change; it never stops the job.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from ..config import Settings
from ..loops.reports import report_in_child
from . import REPORT_NAME
from .data import Scope

__all__ = ["ReportRefresher"]

log = logging.getLogger(__name__)


class ReportRefresher:
    def __init__(self, store: str | Path, out_dir: Path, scope: Scope, every: float = 30.0) -> None:
        self.store, self.out_dir, self.scope, self.every = store, out_dir, scope, every
        self.builds = 0
        self._dirty = threading.Event()  # the verdicts changed since the last build
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._last = float("-inf")
        self._thread = threading.Thread(target=self._run, name="report", daemon=True)

    @classmethod
    def for_run(cls, settings: Settings, report_dir: Path | None, every: float) -> ReportRefresher:
        """The refresher of `run --report`: report.html in --report-dir (default --out), started."""
        folder = report_dir or settings.out_dir
        folder.mkdir(parents=True, exist_ok=True)
        scope = Scope(accounts=settings.account_filter or None)
        store = settings.store.reveal() if settings.store is not None else settings.state_dir
        return cls(store, folder, scope, every).start()

    def start(self) -> ReportRefresher:
        self._thread.start()
        return self

    def notify(self) -> None:
        """The verdicts changed: rebuild soon. Never blocks."""
        self._dirty.set()
        self._wake.set()

    def close(self, timeout: float = 60.0) -> None:
        """Stop the worker, after a last build when a change is still pending."""
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait()
            self._wake.clear()
            if self._stop.is_set() or not self._dirty.is_set():
                continue
            wait = self._last + self.every - time.monotonic()
            if wait > 0 and self._stop.wait(wait):
                break
            self._dirty.clear()
            self._build()
        if self._dirty.is_set():
            self._dirty.clear()
            self._build()

    def _build(self) -> None:
        self._last = time.monotonic()
        failed = report_in_child(self.store, self.out_dir, self.scope.accounts or ())
        if failed:
            log.warning("report.html not refreshed: %s", failed)
            return
        self.builds += 1
        log.info("report refreshed: %s", self.out_dir / REPORT_NAME)
