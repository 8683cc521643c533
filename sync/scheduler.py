"""The every-N-seconds loop: drift-free ticks, no overlap, per-account isolation, graceful stop.

Each tick runs one cycle for every ready account concurrently; a failing account is logged and
the others carry on. A delegated account without a login logs where and with which code to log
in (once), and joins the loop when the operator has approved the code. SIGINT/SIGTERM let the
current cycle finish its writes, then the loop returns.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from .errors import EXIT_NEEDS_HUMAN, EXIT_OK, EXIT_PARTIAL, NeedsHumanError, SyncError
from .models import CycleResult, Presence, ValidationRow
from .outputs.csv import PresenceCsv, append_history_csv, write_validation_csv
from .runtime import AccountRuntime

__all__ = ["Outputs", "Scheduler", "cycle_line"]

log = logging.getLogger("sync.cycle")


def cycle_line(r: CycleResult) -> str:
    text = (f"account {r.account_id}: agents={r.agents} valid={r.valid} resolved={r.resolved} "
            f"presences={r.presences} changes={r.changes} requests={r.requests} 429s={r.throttled} "
            f"duration={r.duration_s:.3f}s")
    if r.stale:
        text += f" stale={r.stale}"
    if r.written_back:
        text += f" written_back={r.written_back}"
    return text


@dataclass
class Outputs:
    """presence.csv, presence_history.csv and validation.csv in one output folder, for every account."""

    out_dir: Path
    presences: dict[str, list[Presence]] = field(default_factory=dict)
    validation: dict[str, list[ValidationRow]] = field(default_factory=dict)
    validation_dirty: bool = False
    observed_at: dict[str, datetime] = field(default_factory=dict)
    _presence_csv: PresenceCsv | None = None

    @property
    def presence_csv(self) -> Path:
        return self.out_dir / "presence.csv"

    @property
    def history_csv(self) -> Path:
        return self.out_dir / "presence_history.csv"

    @property
    def validation_csv(self) -> Path:
        return self.out_dir / "validation.csv"

    def write_validation(self) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        rows = [(acc, v) for acc in sorted(self.validation) for v in self.validation[acc]]
        write_validation_csv(self.validation_csv, rows)
        self.validation_dirty = False

    def write_presence(self) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if self._presence_csv is None:
            self._presence_csv = PresenceCsv(self.presence_csv)
        self._presence_csv.write([p for acc in sorted(self.presences) for p in self.presences[acc]],
                                 self.observed_at)


class Scheduler:
    def __init__(self, runtimes: Sequence[AccountRuntime], outputs: Outputs, *, interval: float,
                 once: bool, max_cycles: int | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 on_cycle: Callable[[int, list[CycleResult]], None] | None = None) -> None:
        self.runtimes = list(runtimes)
        self.outputs = outputs
        self.interval = interval
        self.once = once
        self.max_cycles = 1 if once else max_cycles
        self._clock = clock
        self.on_cycle = on_cycle  # called after every tick's writes (metrics, benchmarks)
        self.stop = asyncio.Event()
        self._stop_flag = threading.Event()  # seen by device-login threads
        self.cycles = 0
        self.failed_accounts: set[str] = set()
        self.needs_human: set[str] = set()

    def request_stop(self) -> None:
        self.stop.set()
        self._stop_flag.set()

    async def _cycle_one(self, rt: AccountRuntime, final: bool) -> CycleResult | None:
        try:
            out = await rt.pipeline().run_cycle(force_refresh=self.cycles == 0, final=final)
        except NeedsHumanError as exc:
            if rt.account_id not in self.needs_human:
                log.error("%s", exc)
            self.needs_human.add(rt.account_id)
            if rt.account.auth == "device":
                rt.auth.forget_login()  # the next tick starts a device login and logs its code
            return None
        except (SyncError, OSError) as exc:
            log.error("account %s: cycle failed: %s", rt.account_id, exc)
            self.failed_accounts.add(rt.account_id)
            return None
        self.needs_human.discard(rt.account_id)
        r = out.result
        self.outputs.presences[rt.account_id] = out.presences
        self.outputs.observed_at[rt.account_id] = out.observed_at
        if out.validation_changed:
            self.outputs.validation[rt.account_id] = out.validation
            self.outputs.validation_dirty = True
        if out.changes:
            append_history_csv(self.outputs.history_csv, out.changes)
        if out.planned_writes and rt.dry_run:
            rt.report_dry_run(out.planned_writes)
        if r.error:
            self.failed_accounts.add(rt.account_id)
            log.warning("account %s: %s", rt.account_id, r.error)
        log.info("%s", cycle_line(r))
        return r

    def _start_logins(self) -> None:
        for rt in self.runtimes:
            if rt.ready or rt.login_thread is not None:
                continue
            try:
                rt.start_device_login(self._stop_flag, wait=not self.once)
            except NeedsHumanError as exc:
                log.error("%s", exc)
            self.needs_human.add(rt.account_id)

    async def run(self) -> int:
        self.outputs.out_dir.mkdir(parents=True, exist_ok=True)
        self._start_logins()
        start = self._clock()
        tick = 0
        while True:
            if tick:
                self._start_logins()  # device logins that expired or were lost since the last tick
            ready = [rt for rt in self.runtimes if rt.ready]
            final = self.max_cycles is not None and self.cycles + 1 >= self.max_cycles
            results = await asyncio.gather(*(self._cycle_one(rt, final) for rt in ready))
            self.cycles += 1
            if self.cycles == 1:
                # The first cycle built what lives for the whole run (roster, directory index, snapshot):
                # move it out of the collector's way so later cycles don't pay for rescanning it.
                gc.collect()
                gc.freeze()
                # Each cycle allocates ~10 objects per agent (the JSON replies) that die young; collect them
                # in larger batches instead of every 700 allocations.
                gc.set_threshold(50_000, 20, 20)
            if any(r is not None for r in results):
                self.outputs.write_presence()
            if self.outputs.validation_dirty:
                self.outputs.write_validation()
            if self.on_cycle is not None:
                self.on_cycle(self.cycles, [r for r in results if r is not None])
            if final or self.stop.is_set():
                break
            tick += 1
            # Drift-free: the n-th cycle starts at start + n*interval; a slow cycle skips missed ticks.
            now = self._clock()
            next_at = start + tick * self.interval
            if next_at < now:
                tick = int((now - start) // self.interval) + 1
                next_at = start + tick * self.interval
            try:
                await asyncio.wait_for(self.stop.wait(), timeout=max(0.0, next_at - self._clock()))
                break
            except TimeoutError:
                pass
        if self.stop.is_set():
            return EXIT_OK  # asked to stop: the current cycle finished its writes
        return self.exit_code()

    def exit_code(self) -> int:
        if self.needs_human:
            return EXIT_NEEDS_HUMAN
        if self.failed_accounts:
            return EXIT_PARTIAL
        return EXIT_OK
