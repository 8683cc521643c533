"""Never silent: an account that reads no presence for 3 intervals says what is failing and what to do.

The scheduler tells a ``StallWatch`` when the account's loops start and after every presence tick that read
presence; it asks ``due(now)`` each time it wakes. While the account is stalled, one ERROR line per
``log_every`` seconds (the first at 3 intervals); after ``alert_after`` seconds the needs-a-human alert. What is
failing and the fix come from the account's own state (``describe``): the last failure its slow loops recorded
(errors carry their fix), else what it is waiting for.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .models import CycleResult

__all__ = ["ALERT_AFTER", "LOG_EVERY", "StallWatch", "describe", "made_progress"]

LOG_EVERY = 60.0  # seconds between ERROR lines while stalled
ALERT_AFTER = 300.0  # seconds stalled before the needs-a-human alert
INTERVALS = 3  # presence intervals without a presence read that make a stall


def made_progress(result: CycleResult) -> bool:
    """A tick counts as progress when it read presence, or had nothing left to read (every cell invalid)."""
    if result.error:
        return False
    return result.presences > 0 or (result.resolved == 0 and "still loading" not in result.note)


@dataclass
class StallWatch:
    interval: float
    log_every: float = LOG_EVERY
    alert_after: float = ALERT_AFTER
    clock: Callable[[], float] = time.monotonic
    since: float = field(default=0.0)
    _logged: float | None = None
    alerted: bool = False

    def __post_init__(self) -> None:
        self.since = self.clock()

    def progress(self) -> bool:
        """A presence read succeeded; True when the account was stalled until now."""
        was = self._logged is not None
        self.since, self._logged, self.alerted = self.clock(), None, False
        return was

    def stalled_for(self, now: float | None = None) -> float:
        return (self.clock() if now is None else now) - self.since

    @property
    def stalled(self) -> bool:
        return self._logged is not None

    def due(self, now: float | None = None) -> tuple[bool, bool]:
        """(log an ERROR line now, raise the alert now)."""
        now = self.clock() if now is None else now
        if now - self.since < INTERVALS * self.interval:
            return False, False
        log = self._logged is None or now - self._logged >= self.log_every
        if log:
            self._logged = now
        alert = not self.alerted and now - self.since >= self.alert_after
        if alert:
            self.alerted = True
        return log, alert


def describe(account: str, state: Any) -> tuple[str, str]:
    """(what is failing, what to do) for an account's ``AccountState``."""
    doctor = f"run `presence-sync doctor --account {account}`; the lines before this one name the failing request"
    failures = list(getattr(state, "failures", ()) or ())
    if failures:  # the errors end with their fix when they know one
        return failures[-1], doctor
    targets = getattr(state, "targets", None)
    ready = getattr(state, "targets_ready", None)
    if targets is None or ready is None or not ready.is_set():
        return "the Agent list or the directory has not produced any agent yet", doctor
    if not targets.user_ids:
        return (f"none of the {targets.agents} Agent-list item(s) resolves to a directory user yet",
                "check validation.csv for the cells' findings; " + doctor)
    return "every presence call failed", doctor
