"""Progress of a long piece of work done in steps (export, report): a bar on a terminal (drawn by the CLI),
else a log line per step at most every few seconds, and a last line when done."""

from __future__ import annotations

import logging
import time
from typing import Any, Protocol

__all__ = ["NO_PROGRESS", "BarSteps", "LogSteps", "Steps"]

log = logging.getLogger("sync.progress")


class Steps(Protocol):
    def begin(self, what: str, total: int) -> None: ...
    def step(self, description: str) -> None: ...
    def done(self, summary: str) -> None: ...


class _Silent:
    def begin(self, what: str, total: int) -> None:
        pass

    def step(self, description: str) -> None:
        pass

    def done(self, summary: str) -> None:
        pass


NO_PROGRESS: Steps = _Silent()


class LogSteps:
    """Plain INFO lines (for logs and pipes): ``export: step 2/6: reading snapshot``, at most one every
    ``every`` seconds, and the summary at the end."""

    def __init__(self, every: float = 2.0) -> None:
        self.every = every
        self._what = ""
        self._total = 0
        self._done = 0
        self._last = float("-inf")

    def begin(self, what: str, total: int) -> None:
        self._what, self._total, self._done = what, total, 0
        self._last = float("-inf")

    def step(self, description: str) -> None:
        self._done += 1
        now = time.monotonic()
        if now - self._last >= self.every:
            self._last = now
            log.info("%s: step %d/%d: %s", self._what, self._done, self._total, description)

    def done(self, summary: str) -> None:
        log.info("%s", summary)


class BarSteps:
    """A rich progress bar on ``console`` (a terminal), removed when done; the summary goes to the log."""

    def __init__(self, console: Any) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                             TimeElapsedColumn(), console=console, transient=True)
        self._task: Any = None
        self._what = ""
        self._started = 0

    def begin(self, what: str, total: int) -> None:
        self._what, self._started = what, 0
        self._bar.start()
        self._task = self._bar.add_task(what, total=total)

    def step(self, description: str) -> None:  # called as a step starts: the ones before it are done
        self._bar.update(self._task, completed=self._started, description=f"{self._what}: {description}")
        self._started += 1

    def done(self, summary: str) -> None:
        self._bar.stop()
        log.info("%s", summary)
