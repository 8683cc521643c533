"""What the job knows about each account's health: the scheduler's hooks feed it, metrics and alerts read it.

The hooks are cheap (a lock, a few assignments): ``cycle_done`` after each presence tick, ``step_failed`` when a
slow loop (roster, domains, write-back) fails a step, ``needs_human`` / ``login_needed`` / ``account_failed``
when the scheduler stops an account, ``presence_read`` / ``stalled`` / ``stall_over`` from the scheduler's stall
watch (``sync/stall.py``). Readiness: every account had a good cycle (a presence tick without error) within 3
intervals and is not stalled (no presence read for 3 intervals). Incidents: login needed, consent missing, wrong
or expired secret (from the AADSTS code), client secret expiring within 14 days (``ClientSecretExpires``), 5
failed cycles in a row, and needs a human for 5 minutes stalled; a good cycle resolves all of them but the
expiring secret, which is resolved when the configured date moves on, and a stall's, which a presence read ends.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Protocol

from ..config import AccountConfig
from ..models import CycleResult
from ..stall import duration, stall_line
from .incidents import HUMAN_KINDS, Alert, IncidentBook, classify
from .redact import redact

__all__ = ["FAILING_AFTER", "SECRET_WARNING", "AccountWatch", "Monitor"]

FAILING_AFTER = 5  # failed cycles in a row that make an incident
SECRET_WARNING = timedelta(days=14)
READY_INTERVALS = 3


class ReplicaView(Protocol):
    """What the monitor reads of this replica's lease rounds (sync/replicas/coordinator.py)."""

    held: dict[str, int]  # account -> fencing token
    changes: int  # leases taken or given up
    renewal_seconds: list[float]  # the last rounds' renewal latency
    failing: str  # why the last round failed ("" when it worked)

    @property
    def replica_id(self) -> str: ...


def _hms(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%H:%M:%SZ")


@dataclass
class AccountWatch:
    """One account as the monitor sees it."""

    config: AccountConfig
    started: float
    last_tick: float | None = None
    last_good: float | None = None
    failures: int = 0  # failed cycles (or loop steps) since the last good cycle
    last_error: str = ""
    human: str = ""  # what stops the account until a human acts ("" when nothing)
    loops: Any = None  # AccountLoops, once started
    runtime: Any = None  # AccountRuntime, when built
    stalled: str = ""  # why no presence has been read for 3 intervals, and what to do ("" when it is read)
    stall_alerted: bool = False  # the stall opened the needs_human incident
    read_at: float | None = None  # last presence read (or the loops' start): the age gauge


class Monitor:
    """Per-account health, fed by the scheduler; alerts go to ``sink`` (any thread)."""

    def __init__(self, accounts: Sequence[AccountConfig], book: IncidentBook, *, interval: float,
                 runtimes: Sequence[Any] = (), sink: Callable[[Alert], None] | None = None,
                 on_cycle: Callable[[str, CycleResult], None] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.book = book
        self.interval = interval
        self.sink = sink
        self.on_cycle = on_cycle  # the metrics' per-tick update
        self._clock = clock
        self._lock = threading.Lock()
        # Several replicas: the lease rounds of this one; its readiness and metrics cover the accounts it holds.
        self.replica: ReplicaView | None = None
        now = clock()
        self.accounts = {a.id: AccountWatch(a, now) for a in accounts}
        for rt in runtimes:
            if rt.account_id in self.accounts:
                self.accounts[rt.account_id].runtime = rt

    def _emit(self, alerts: list[Alert]) -> None:
        if self.sink is not None:
            for a in alerts:
                self.sink(a)

    # --- hooks (called by the scheduler) ----------------------------------------------------------------

    def loops_started(self, account: str, loops: Any) -> None:
        watch = self.accounts.get(account)
        if watch is not None:
            watch.loops = loops
            watch.read_at = self._clock()  # the stall clock starts with the loops
            loops.state.on_failure = partial(self.step_failed, account)

    def account_taken(self, account: str) -> None:
        """This replica took the account's lease: it is judged afresh from now (a good tick of its own)."""
        watch = self.accounts.get(account)
        if watch is not None:
            with self._lock:
                watch.started = self._clock()
                watch.last_good = watch.last_tick = None
                watch.failures, watch.last_error, watch.stalled = 0, "", ""

    def holds(self, account: str) -> bool:
        """Whether this replica runs the account (always, without replicas)."""
        return self.replica is None or account in self.replica.held

    def cycle_done(self, account: str, result: CycleResult) -> None:
        """After a presence tick's writes (worker thread)."""
        if self.on_cycle is not None:
            self.on_cycle(account, result)
        if result.error:
            self.step_failed(account, result.error)
            return
        watch = self.accounts.get(account)
        if watch is None:
            return
        with self._lock:
            watch.last_tick = watch.last_good = self._clock()
            watch.failures, watch.last_error, watch.human = 0, "", ""
            # A tick without error that read nothing (no agent resolves) leaves a stall, and its alert, open.
            keep = ("secret_expiring", "needs_human") if watch.stall_alerted else ("secret_expiring",)
        self._emit(self.book.resolve(account, keep=keep))

    def step_failed(self, account: str, what: str) -> None:
        watch = self.accounts.get(account)
        if watch is None:
            return
        with self._lock:
            watch.last_tick = self._clock()
            watch.failures += 1
            watch.last_error = redact(what)
            failing = watch.failures >= FAILING_AFTER
        if failing:
            self._emit(self.book.open(account, "account_failing",
                                      f"{watch.failures} failed cycles in a row; the last: {watch.last_error}"))

    def needs_human(self, account: str, message: str) -> None:
        watch = self.accounts.get(account)
        if watch is None:
            return
        with self._lock:
            watch.human = redact(message)
        kind = classify(message)
        hint = message.split(" -> ", 1)[1] if " -> " in message else ""
        self._emit(self.book.open(account, kind, watch.human, redact(hint[:1].upper() + hint[1:] + ".") if hint
                                  else ""))

    def login_needed(self, account: str) -> None:
        self.needs_human(account, f"account '{account}' has no login (login_required); the job's log shows where "
                                  "to log in and the code to enter.")

    def account_failed(self, account: str, message: str) -> None:
        """An account's loops ended with an error (they are not restarted)."""
        watch = self.accounts.get(account)
        if watch is None:
            return
        with self._lock:
            watch.failures = max(watch.failures, FAILING_AFTER)
            watch.last_error = redact(f"stopped: {message}")
        self._emit(self.book.open(account, "account_failing", watch.last_error))

    def presence_read(self, account: str) -> None:
        """A presence tick read presence (the stall watch's progress): a stall and its alert are over."""
        watch = self.accounts.get(account)
        if watch is None:
            return
        with self._lock:
            watch.read_at = self._clock()
            watch.stalled = ""
            alerted, watch.stall_alerted = watch.stall_alerted, False
        if alerted:
            self._emit(self.book.resolve(account, kinds=("needs_human",)))

    def stalled(self, account: str, seconds: float, what: str, fix: str, *, alert: bool = False) -> None:
        """No presence read for ``seconds`` (3 intervals or more): what fails and what to do, for /readyz and
        /metrics (told at every wake of the scheduler); ``alert``: 5 minutes of it, the needs-a-human alert."""
        watch = self.accounts.get(account)
        if watch is None:
            return
        with self._lock:
            watch.stalled = redact(stall_line(seconds, what, fix))
            watch.stall_alerted = watch.stall_alerted or alert
        if alert:  # the alert's message and action: the same what and what to do as the ERROR line
            self._emit(self.book.open(account, "needs_human", f"no presence read for {duration(seconds)}: {what}.",
                                      fix))

    def stall_over(self, account: str) -> None:
        """The account's loops ended while stalled (stopped, or waiting for a login): that says why now."""
        watch = self.accounts.get(account)
        if watch is not None:
            with self._lock:
                watch.stalled = ""

    def check(self, today: datetime | None = None) -> None:
        """Periodic: client secrets expiring within 14 days (alerted once), or no longer (resolved)."""
        now = today or datetime.fromtimestamp(self._clock(), UTC)
        for account, watch in self.accounts.items():
            expires = watch.config.secret_expires
            if expires is None:
                continue
            left = datetime(expires.year, expires.month, expires.day, tzinfo=UTC) - now
            if left <= SECRET_WARNING:
                when = "expired" if left.total_seconds() <= 0 else f"expires in {max(left.days, 0)} day(s)"
                self._emit(self.book.open(account, "secret_expiring",
                                          f"the client secret {when} ({expires.isoformat()}, ClientSecretExpires)."))
            else:
                self._emit(self.book.resolve(account, kinds=("secret_expiring",)))

    # --- reading -----------------------------------------------------------------------------------------

    def needs_human_now(self, account: str) -> bool:
        watch = self.accounts.get(account)
        return bool(watch and watch.human) or any(k in HUMAN_KINDS for k in self.book.open_kinds(account))

    def read_age(self, account: str) -> float | None:
        """Seconds since the account last read presence (since its loops started, if never); None before."""
        watch = self.accounts.get(account)
        if watch is None or watch.read_at is None:
            return None
        return max(0.0, self._clock() - watch.read_at)

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        """(ready, JSON body): every account had a good cycle within 3 intervals, else why not, per account.
        With several replicas: every account this replica holds (one holding none is ready: a standby)."""
        now = self._clock()
        window = READY_INTERVALS * self.interval
        body: dict[str, Any] = {"ready": True, "accounts": {}}
        if self.replica is not None:
            body["replica"] = self.replica.replica_id
            if self.replica.failing:
                body["ready"] = False
                body["reason"] = f"the lease database does not answer: {self.replica.failing}"
        with self._lock:
            for account, w in self.accounts.items():
                if not self.holds(account):
                    body["accounts"][account] = {"ready": True, "held": False}
                    continue
                good = w.last_good is not None and now - w.last_good <= window
                entry: dict[str, Any] = {"ready": good}
                if w.last_good is not None:
                    entry["last_good_cycle"] = datetime.fromtimestamp(w.last_good, UTC).isoformat().replace(
                        "+00:00", "Z")
                if w.stalled:
                    good = entry["ready"] = False
                    entry["stalled"] = True
                if not good:
                    body["ready"] = False
                    entry["reason"] = w.stalled or self._reason(w, now)
                body["accounts"][account] = entry
        return bool(body["ready"]), body

    def _reason(self, w: AccountWatch, now: float) -> str:
        if w.human:
            kind = classify(w.human)
            return f"{kind.replace('_', ' ')}: {w.human}"
        since = (f"no good cycle since {_hms(w.last_good)}" if w.last_good is not None
                 else f"no good cycle since the start at {_hms(w.started)}")
        return f"{since}: {w.last_error}" if w.last_error else since
