"""Never silent: an account that reads no presence for 3 intervals says what is failing and what to do.

Without this, an account whose Agent list or directory read keeps failing can run for hours doing no presence
read, with nothing in the log a user could act on. The scheduler owns one ``StallWatch`` per running account (not
``--once``): it is told when the account's loops start, of every presence tick (``tick``) and of every failure
the slow loops record (``failed``), and is asked ``due(now)`` each time the scheduler wakes. While the account is
stalled it asks for one ERROR line per ``log_every`` seconds (the first at 3 intervals; at 15 s for a cold start
in which nothing has failed yet, see ``STARTUP_GRACE``) and, once, after
``alert_after`` seconds, for the needs-a-human alert. ``explain`` (plain values in, text out) says what is
failing and what to do; ``describe`` feeds it from the watch and the account's ``AccountState``.

Progress is a presence tick that read at least one presence (``CycleResult.presences``: fresh reads, stale ones
do not count), or a tick without error for an Agent list with no items (nothing to read). A tick whose chunks
failed only in part is progress: the account does read presence, and its failures have their own WARNING line
per tick and the ``account_failing`` incident. A tick that read nothing because no Agent-list item resolves to a
directory user is no progress: that is something a user must fix.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import SyncError
from .models import CycleResult

__all__ = ["ALERT_AFTER", "INTERVALS", "LOG_EVERY", "STARTUP_GRACE", "Due", "StallWatch", "describe", "duration", "explain",
           "hint_of", "made_progress", "stall_line"]

LOG_EVERY = 60.0  # seconds between ERROR lines while stalled
ALERT_AFTER = 300.0  # seconds without a presence read before the needs-a-human alert
INTERVALS = 3  # presence intervals without a presence read that make a stall
# A cold start in which nothing has failed yet (the Agent list and the directory still being read) is a stall only
# after this many seconds: the first presence read is due within 15 s of start, and a healthy start of a large
# tenant takes longer than 3 intervals of 1 s.
STARTUP_GRACE = 15.0


def made_progress(result: CycleResult) -> bool:
    """A tick that read presence, or had nothing to read because the Agent list has no items."""
    return result.presences > 0 or (not result.error and result.agents == 0)


@dataclass(frozen=True)
class Due:
    """What the watch asks for at one moment."""

    stalled: bool = False  # no progress for 3 intervals
    log: bool = False  # an ERROR line is due now
    alert: bool = False  # the needs-a-human alert is due now (once per stall)
    seconds: float = 0.0  # without a presence read (since the loops started, or since the last progress)


class StallWatch:
    """The stall clock of one account; safe to call from the presence tick's worker thread and the event loop."""

    def __init__(self, interval: float, log_every: float = LOG_EVERY, alert_after: float = ALERT_AFTER,
                 clock: Callable[[], float] = time.monotonic, startup_grace: float = STARTUP_GRACE) -> None:
        self.interval = interval
        self.startup_grace = startup_grace
        self.log_every = log_every
        self.alert_after = alert_after
        self.clock = clock
        self._lock = threading.Lock()
        self.since = clock()
        self._next_log: float | None = None  # None: no ERROR line yet in this stall
        self._alerted = False
        self._stalled = False
        self.failure = ""  # the latest failure a slow loop recorded since the last progress
        self.hint = ""  # that failure's own fix, when its error carried one
        self.presence_error = ""  # the last presence tick's error, since the last progress
        self._cold = True  # no presence read since the loops started

    def started(self) -> None:
        """The account's loops (re)start: the clock starts again, nothing from before counts."""
        self.progress()
        self._cold = True

    def progress(self) -> bool:
        """Presence was read; True when that ends a stall. The clock starts again; the failures recorded so far
        were followed by a presence read, so they no longer say why presence stops."""
        now = self.clock()
        with self._lock:
            was = self._stalled
            self.since, self._next_log, self._alerted, self._stalled = now, None, False, False
            self._cold = False
            self.failure = self.hint = self.presence_error = ""
        return was

    def failed(self, what: str, hint: str = "") -> None:
        """A slow loop recorded a failure (``AccountState.note_failure``); ``hint``: its error's fix, if any."""
        with self._lock:
            self.failure, self.hint = what, hint

    def tick(self, result: CycleResult) -> tuple[bool, bool]:
        """A presence tick ended: (it was progress, it ended a stall)."""
        if made_progress(result):
            return True, self.progress()
        with self._lock:
            self.presence_error = result.error or ""
        return False, False

    @property
    def stalled(self) -> bool:
        return self._stalled

    def stalled_for(self, now: float | None = None) -> float:
        return (self.clock() if now is None else now) - self.since

    def due(self, now: float | None = None) -> Due:
        """Whether the account is stalled at ``now``, and whether a line or the alert is due."""
        now = self.clock() if now is None else now
        with self._lock:
            seconds = now - self.since
            limit = INTERVALS * self.interval
            if self._cold and not (self.failure or self.presence_error):
                limit = max(limit, self.startup_grace)  # a cold start with nothing failing yet
            if seconds < limit:
                return Due(seconds=seconds)
            self._stalled = True
            log = self._next_log is None or now >= self._next_log
            if log:  # one a period, without drifting by the scheduler's wake-ups
                nxt = now if self._next_log is None else self._next_log
                self._next_log = nxt + self.log_every if nxt + self.log_every > now else now + self.log_every
            alert = not self._alerted and seconds >= self.alert_after
            self._alerted = self._alerted or alert
            return Due(True, log, alert, seconds)


def duration(seconds: float) -> str:
    """``45 s``, ``5 min 3 s``, ``2 h 10 min``: how long, as a person reads it in a log line."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    return f"{s // 3600} h {s % 3600 // 60} min"


def explain(account: str, *, failure: str = "", hint: str = "", presence_error: str = "",
            targets_ready: bool = False, agents: int = 0, user_ids: int = 0, complete: bool = True,
            ) -> tuple[str, str]:
    """(what is failing, what to do), from plain values: the latest failure of a slow loop first (its own fix
    when its error carried one), else the last presence tick's error, else what the account waits for."""
    doctor = (f"Run `presence-sync doctor --account {account}`; the lines before this one name the failing "
              "request.")
    if failure:
        if hint and hint in failure:
            cut = f" {hint}" if f" {hint}" in failure else hint
            return _clause(failure.replace(cut, "", 1)), _sentence(hint)
        return _clause(failure), doctor
    if presence_error:
        return _clause(f"presence cannot be read: {presence_error}"), doctor
    if not targets_ready:
        return "the Agent list or the directory has not produced any agent yet", doctor
    if agents and not user_ids:
        if not complete:
            return (f"the directory is still being read and none of the {agents} Agent-list item(s) resolves "
                    "to a directory user yet", doctor)
        return (f"none of the {agents} Agent-list item(s) resolves to a directory user",
                "See validation.csv for each cell's finding (a wrong UPN, a user missing from the directory); "
                + doctor[:1].lower() + doctor[1:])
    return f"no presence tick for the {user_ids} agent(s) has finished (Graph answers slowly or not at all)", doctor


def hint_of(exc: BaseException | None, what: str) -> str:
    """The fix carried by ``exc`` or an error it was raised from (``raise ... from``), when ``what`` (the text a
    loop recorded) includes it: a wrapped error keeps its cause's hint in its text, not in its own ``hint``."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, SyncError) and exc.hint and exc.hint in what:
            return exc.hint
        exc = exc.__cause__ or exc.__context__
    return ""


def describe(account: str, watch: StallWatch, state: Any) -> tuple[str, str]:
    """``explain`` for a running account: the watch's failures and the ``AccountState``'s current Targets."""
    targets = state.targets
    return explain(account, failure=watch.failure, hint=watch.hint, presence_error=watch.presence_error,
                   targets_ready=state.targets_ready.is_set(), agents=targets.agents,
                   user_ids=len(targets.user_ids), complete=targets.complete)


def stall_line(seconds: float, what: str, fix: str) -> str:
    """The text of the ERROR line (after ``account X: ``), of /readyz's reason and of the alert."""
    return f"no presence read for {duration(seconds)}: {what}. To fix: {fix}"


def _clause(text: str) -> str:
    return " ".join(text.split()).rstrip(" .;:")


def _sentence(text: str) -> str:
    text = " ".join(text.split())
    return text[:1].upper() + text[1:] + ("" if text.endswith((".", "!", "?")) else ".")
