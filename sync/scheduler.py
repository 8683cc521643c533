"""The supervisor: starts each ready account's loops, restarts what a lost login stopped, stops them gracefully.

- ``--once``: per account, one pass of each concern in order (domains, roster + directory, one presence tick,
  write-back until every changed item is written or the deadline passes).
- Otherwise: per account, the domains, roster, presence and write-back loops run side by side until
  SIGINT/SIGTERM (or ``max_cycles`` presence ticks). A delegated account without a login logs where and with
  which code to log in (once), and its loops start when the operator has approved the code.
- Stopping: every loop finishes its current writes; after ``max_cycles`` the write-back drains what is pending.
Accounts are isolated: a failing or throttled account never holds another one's presence ticks.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from .errors import EXIT_NEEDS_HUMAN, EXIT_OK, EXIT_PARTIAL, LeaseLost, NeedsHumanError, StoreError, SyncError
from .http import CURRENT_ACCOUNT
from .loops import AccountLoops, cycle_line
from .models import CycleResult
from .observe.redact import redact
from .outputs.folder import Outputs
from .runtime import AccountRuntime
from .stall import ALERT_AFTER, LOG_EVERY, StallWatch, describe, duration, hint_of, stall_line

__all__ = ["Outputs", "Scheduler", "cycle_line"]

log = logging.getLogger("sync.cycle")


class Scheduler:
    READER_GRACE = 5.0  # seconds the roster and domains loops get to finish a step when the job stops
    # ... when the account passes to another replica (a handover, SIGTERM with several replicas): the new holder
    # repeats a cancelled step, so the lease is not kept waiting for it.
    HANDOVER_GRACE = 0.5

    def __init__(self, runtimes: Sequence[AccountRuntime], outputs: Outputs, *, interval: float,
                 once: bool, max_cycles: int | None = None, writeback_deadline: float = 300.0,
                 on_cycle: Callable[[int, list[CycleResult]], None] | None = None,
                 stall_log_every: float = LOG_EVERY, stall_alert_after: float = ALERT_AFTER) -> None:
        self.runtimes = list(runtimes)
        self.outputs = outputs
        self.interval = interval
        self.once = once
        self.max_cycles = 1 if once else max_cycles
        self.writeback_deadline = writeback_deadline
        self.on_cycle = on_cycle  # called after every presence tick's writes (metrics, benchmarks)
        self.stop = asyncio.Event()
        self._stop_flag = threading.Event()  # seen by device-login threads
        self.ticks: dict[str, int] = {}
        self.failed_accounts: set[str] = set()
        self.needs_human: set[str] = set()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._gc_frozen = False
        self.observer: Any = None  # sync.observe.Monitor when metrics or alerts are on: told what happens
        # Never silent (sync/stall.py): per running account (not --once), the clock of its last presence read.
        self.stall_log_every = stall_log_every  # seconds between ERROR lines while stalled
        self.stall_alert_after = stall_alert_after  # seconds stalled before the needs-a-human alert
        self.stalls: dict[str, StallWatch] = {}
        # Several replicas (sync/replicas): an account runs only while this replica holds its lease.
        self.coordinated = False
        self.held: set[str] = set()
        self._account_stops: dict[str, asyncio.Event] = {}

    @property
    def cycles(self) -> int:
        return max(self.ticks.values(), default=0)

    def request_stop(self) -> None:
        self.stop.set()
        self._stop_flag.set()

    def _cycle_done(self, rt: AccountRuntime, result: CycleResult) -> None:
        """After each presence tick's writes (in the tick's worker thread)."""
        self.ticks[rt.account_id] = self.ticks.get(rt.account_id, 0) + 1
        watch = self.stalls.get(rt.account_id)
        if watch is not None:
            stalled_for = watch.stalled_for()
            progress, ended = watch.tick(result)
            if ended:
                log.info("account %s: presence is read again (after %s without)", rt.account_id,
                         duration(stalled_for))
            if progress and self.observer is not None:
                self.observer.presence_read(rt.account_id)  # before cycle_done: a stall's alert is resolved
        if result.error:
            self.failed_accounts.add(rt.account_id)
        if self.on_cycle is not None:
            self.on_cycle(self.cycles, [result])
        if self.observer is not None:
            self.observer.cycle_done(rt.account_id, result)

    def _loops(self, rt: AccountRuntime) -> AccountLoops:
        loops = rt.loops()
        presence = loops.attach(self.outputs)
        presence.on_cycle = lambda r: self._cycle_done(rt, r)
        if self.observer is not None:
            self.observer.loops_started(rt.account_id, loops)
        then = loops.state.on_failure
        loops.state.on_failure = _FailureTap(self.stalls, rt.account_id,
                                             then.then if isinstance(then, _FailureTap) else then)
        return loops

    # --- --once ------------------------------------------------------------------------------------------------

    async def _once(self, rt: AccountRuntime) -> None:
        loops = self._loops(rt)
        await loops.domains.step()
        await loops.roster_loop.step()
        assert loops.presence is not None
        await loops.presence.tick()
        await loops.presence.flush()
        if loops.writeback_enabled:
            await self._drain(loops)
        if loops.reports is not None:
            await loops.reports.step()

    async def _drain(self, loops: AccountLoops) -> None:
        r = await loops.writeback.drain(time.monotonic() + self.writeback_deadline)
        if r.left or r.failed:
            self.failed_accounts.add(loops.account_id)
            log.warning("account %s: write-back stopped with %d item(s) unwritten", loops.account_id,
                        r.left + len(r.failed))

    # --- the loops ---------------------------------------------------------------------------------------------

    async def _account(self, rt: AccountRuntime) -> None:
        # The stall clock starts with the loops (again after a login restarted them).
        self.stalls[rt.account_id] = StallWatch(self.interval, self.stall_log_every, self.stall_alert_after)
        loops = self._loops(rt)
        stop = asyncio.Event()
        assert loops.presence is not None
        presence = asyncio.ensure_future(loops.presence.run(stop, self.max_cycles))
        wb, interval = loops.writeback, loops.writeback.interval
        writer = asyncio.ensure_future(_again(rt.account_id, "write-back", wb.run, stop, interval,
                                              loops.state.note_failure)) if loops.writeback_enabled else None
        turns = [("domains", loops.domains.run, loops.domains.interval),
                 ("Agent list", loops.roster_loop.run, loops.roster_loop.interval)]
        if loops.reports is not None:
            turns.append(("reports", loops.reports.run, loops.reports.interval))
        readers = [asyncio.ensure_future(_again(rt.account_id, name, run, stop, every, loops.state.note_failure))
                   for name, run, every in turns]
        mine = self._account_stops.setdefault(rt.account_id, asyncio.Event())
        halt = asyncio.ensure_future(_either(self.stop, mine))  # the job stops, or this replica gives it up
        pending: set[asyncio.Future[Any]] = {presence, halt, *readers, *([writer] if writer else [])}
        try:
            while True:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for t in done - {halt}:
                    if t.exception() is not None:
                        raise t.exception()  # type: ignore[misc]
                if presence in done or halt in done:
                    break
        finally:
            stop.set()  # every loop finishes its current writes
            halt.cancel()
            # Readers get a moment to finish a step (a cold start's directory read can take seconds), then are
            # cancelled; their writes are whole transactions, so what they leave is consistent.
            grace = self.HANDOVER_GRACE if self.coordinated else self.READER_GRACE
            _, slow = await asyncio.wait(readers, timeout=grace)
            for t in slow:
                t.cancel()
            await asyncio.gather(presence, *readers, *([writer] if writer else []), return_exceptions=True)
        if not self.stop.is_set() and not mine.is_set() and loops.writeback_enabled:
            await self._drain(loops)  # max_cycles reached: what changed is written before the job ends

    async def _guard(self, rt: AccountRuntime, body: Callable[[AccountRuntime], Coroutine[Any, Any, None]]) -> None:
        """Run one account; map its failure to the exit code without touching the other accounts."""
        CURRENT_ACCOUNT.set(rt.account_id)  # labels this account's HTTP requests in the metrics
        try:
            await body(rt)
        except NeedsHumanError as exc:
            if rt.account_id not in self.needs_human:
                log.error("%s", exc)
            self.needs_human.add(rt.account_id)
            if self.observer is not None:
                self.observer.needs_human(rt.account_id, str(exc))
            if rt.account.auth == "device":
                rt.auth.forget_login()  # the next check starts a device login and logs its code
        except (SyncError, OSError) as exc:
            log.error("account %s: cycle failed: %s", rt.account_id, exc)
            self.failed_accounts.add(rt.account_id)
            if self.observer is not None:
                self.observer.account_failed(rt.account_id, str(exc))
        except Exception:  # a defect, not a user mistake: say so loudly, keep the other accounts running
            log.exception("account %s: stopped by an unexpected error (please report it)", rt.account_id)
            self.failed_accounts.add(rt.account_id)
            if self.observer is not None:
                self.observer.account_failed(rt.account_id, "an unexpected error (see the log)")
        else:
            if not self.once:
                self.needs_human.discard(rt.account_id)
        if rt.loops().state.failures:
            self.failed_accounts.add(rt.account_id)

    def _start_logins(self) -> None:
        for rt in self.runtimes:
            if rt.ready or rt.login_thread is not None:
                continue
            try:
                rt.start_device_login(self._stop_flag, wait=not self.once)
            except NeedsHumanError as exc:
                log.error("%s", exc)
            self.needs_human.add(rt.account_id)
            if self.observer is not None:
                self.observer.login_needed(rt.account_id)

    def start_account(self, account_id: str) -> None:
        """This replica took the account's lease: its loops start (now, or once its login is ready)."""
        self.held.add(account_id)
        self._account_stops.pop(account_id, None)
        if self.observer is not None:
            self.observer.account_taken(account_id)
        self._start_ready()

    async def stop_account(self, account_id: str) -> None:
        """This replica gives the account up: its loops stop (their current writes finish) and are built from
        the store again when it comes back."""
        self.held.discard(account_id)
        self._account_stops.setdefault(account_id, asyncio.Event()).set()
        task = self._tasks.pop(account_id, None)
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)
        rt = next((r for r in self.runtimes if r.account_id == account_id), None)
        if rt is not None:
            await rt.reset_loops()

    def _start_ready(self) -> None:
        for rt in self.runtimes:
            if self.coordinated and rt.account_id not in self.held:
                continue
            task = self._tasks.get(rt.account_id)
            if rt.ready and (task is None or (task.done() and rt.account_id in self.needs_human)):
                self.needs_human.discard(rt.account_id)
                self._tasks[rt.account_id] = asyncio.ensure_future(self._guard(rt, self._account))

    async def run(self) -> int:
        self.outputs.out_dir.mkdir(parents=True, exist_ok=True)
        self._start_logins()
        if self.once:
            await asyncio.gather(*(self._guard(rt, self._once) for rt in self.runtimes if rt.ready))
            return self.exit_code()
        while True:
            self._start_ready()
            self._freeze_gc()
            running = [t for t in self._tasks.values() if not t.done()]
            waiting = [rt for rt in self.runtimes if not rt.ready]
            if self.stop.is_set() or (not running and not self.coordinated
                                      and (not waiting or self.max_cycles is not None)):
                break
            halt = asyncio.ensure_future(self.stop.wait())
            await asyncio.wait({halt, *running}, timeout=max(self.interval, 0.5),
                               return_when=asyncio.FIRST_COMPLETED)
            halt.cancel()
            self._check_stalls()
            self._start_logins()  # device logins that expired or were lost since
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        if self.stop.is_set():
            return EXIT_OK  # asked to stop: every loop finished its current writes
        return self.exit_code()

    def _check_stalls(self) -> None:
        """Each time the run loop wakes: an ERROR line a minute per running account that reads no presence (with
        what fails and what to do), the needs-a-human alert after 5 minutes; the monitor (/readyz, /metrics)
        gets the current text at every wake. Logged whether or not a monitor runs."""
        for rt in self.runtimes:
            account = rt.account_id
            watch = self.stalls.get(account)
            if watch is None:
                continue
            task = self._tasks.get(account)
            if task is None or task.done():  # the loops ended (stopped, or waiting for a login): no stall to tell
                del self.stalls[account]
                if watch.stalled and self.observer is not None:
                    self.observer.stall_over(account)
                continue
            due = watch.due()
            if not due.stalled:
                continue
            what, fix = (redact(t) for t in describe(account, watch, rt.loops().state))
            if due.log:
                log.error("account %s: %s", account, stall_line(due.seconds, what, fix))
            if self.observer is not None:
                self.observer.stalled(account, due.seconds, what, fix, alert=due.alert)

    def _freeze_gc(self) -> None:
        """Once the first ticks built what lives for the whole run (roster, directory index, snapshot), move it
        out of the collector's way, and collect the ticks' short-lived JSON in larger batches."""
        if not self._gc_frozen and self.cycles >= 1:
            gc.collect()
            gc.freeze()
            gc.set_threshold(50_000, 20, 20)
            self._gc_frozen = True

    def exit_code(self) -> int:
        if self.needs_human:
            return EXIT_NEEDS_HUMAN
        if self.failed_accounts:
            return EXIT_PARTIAL
        return EXIT_OK


async def _either(a: asyncio.Event, b: asyncio.Event) -> None:
    """Until one of two events is set."""
    waits = {asyncio.ensure_future(a.wait()), asyncio.ensure_future(b.wait())}
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()


async def _again(account_id: str, name: str, run: Callable[[asyncio.Event], Coroutine[Any, Any, None]],
                 stop: asyncio.Event, every: float, note: Callable[[str], None]) -> None:
    """Run one of an account's slow loops; a defect that escapes it (an exception nobody expected, e.g. from a
    client library reading a garbled answer) is logged with its traceback and the loop starts again after its
    interval, so neither that account's presence nor any other account stops. A needed login still ends it."""
    while not stop.is_set():
        try:
            await run(stop)
            return
        except NeedsHumanError:
            raise
        except LeaseLost as exc:
            # The lease may have passed on (a pause, a late renewal): nothing is written. If it did pass on, the
            # coordinator stops this account within a round; if the next renewal works, the loop goes on.
            log.info("account %s: the %s loop paused: %s", account_id, name, exc)
            try:
                await asyncio.wait_for(stop.wait(), timeout=1.0)
            except TimeoutError:
                pass
            continue
        except StoreError as exc:  # the store is unreachable (its database restarts): a failure, not a defect
            log.error("account %s: the %s loop failed: %s; it starts again in %g s", account_id, name, exc, every)
            note(f"the {name} loop failed: {exc}")
            try:
                await asyncio.wait_for(stop.wait(), timeout=max(1.0, every))
            except TimeoutError:
                pass
            continue
        except Exception as exc:  # noqa: BLE001 - the last line of defence; the traceback is logged
            log.exception("account %s: the %s loop stopped on an unexpected error (please report it); it starts "
                          "again in %g s", account_id, name, every)
            note(f"the {name} loop failed unexpectedly ({type(exc).__name__}); restarted")
            try:
                await asyncio.wait_for(stop.wait(), timeout=max(1.0, every))
            except TimeoutError:
                pass


class _FailureTap:
    """``AccountState.on_failure`` while the scheduler runs an account: hands each failure to the account's stall
    watch (with its error's own fix), then to the monitor. The slow loops record failures as text from inside
    their ``except`` blocks, so the error being handled (and what it was raised from) is still at hand here,
    with its ``hint``."""

    def __init__(self, stalls: dict[str, StallWatch], account: str, then: Callable[[str], None] | None) -> None:
        self.stalls = stalls
        self.account = account
        self.then = then

    def __call__(self, what: str) -> None:
        watch = self.stalls.get(self.account)
        if watch is not None:
            watch.failed(what, hint_of(sys.exc_info()[1], what))
        if self.then is not None:
            self.then(what)
