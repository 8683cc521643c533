"""The write-back loop: presence and UPN verdicts into the Agent list, paced by SharePoint's quota.

Every ``interval`` seconds it compares what each Agent-list item should hold with what was last written, and
sends the difference, the items that have been wrong longest first, in ``$batch`` groups paced by the app's
SharePoint resource-unit budget (an item update costs 2 RU; 1,250-6,250 RU per minute per app and tenant by
licence tier). An item Graph throttles inside a ``$batch`` is sent again after its own Retry-After; an item
that was written is never sent again for the same values. ``drain`` keeps going until nothing is pending or
a deadline passes (``--once`` and shutdown). The Agent-list lag (time from a presence change to its value in
the list) is measured for every written presence.
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice

from ..config import WriteBackColumns
from ..errors import GraphError
from ..models import Presence, ValidationRow
from ..outputs.csv import format_utc
from ..store import Store
from .roster import DirectoryProgress, LogProgress, RosterSource
from .state import AccountState
from .ticker import Ticker, sleep_or_stop

__all__ = ["WriteBackLoop", "WriteRound", "writeback_values"]

log = logging.getLogger(__name__)

GROUP = 20  # items per $batch (Graph's limit)
NO_ADVICE = 1.0  # seconds before re-sending an item whose answer gave no Retry-After
FILL = 500  # a round with this many items pending reports its progress


def upn_status_text(v: ValidationRow) -> str:
    """E.g. ``fixed: WHITESPACE, PREFIX``; what exactly is wrong and a tie's candidates follow in brackets."""
    text = v.status if not v.codes else f"{v.status}: {', '.join(v.codes)}"
    extra = "; ".join(filter(None, (v.detail, v.candidates)))
    text = f"{text} ({extra})" if extra else text
    return text if len(text) <= 255 else text[:254] + "\u2026"  # a single line of text holds 255


def writeback_values(v: ValidationRow, p: Presence | None, cols: WriteBackColumns) -> dict[str, str]:
    """The column values one Agent-list item should hold (PresenceUpdated: when the current state began)."""
    out = {cols.upn_status: upn_status_text(v)}
    if p is not None and not p.stale:
        out[cols.availability] = p.availability
        out[cols.activity] = p.activity
        out[cols.presence_updated] = format_utc(p.observed_at)
    return out


@dataclass
class WriteRound:
    """What one pass over the pending items achieved."""

    pending: int = 0
    written: int = 0
    throttled: int = 0  # 429s answered (items sent again after their Retry-After)
    failed: dict[int, str] = field(default_factory=dict)
    left: int = 0  # still pending when the round ended (deadline, stop)
    seconds: float = 0.0


class WriteBackLoop:
    def __init__(self, state: AccountState, roster: RosterSource, store: Store, columns: WriteBackColumns, *,
                 interval: float, dry_run: bool = False,
                 report_dry_run: Callable[[Mapping[int, Mapping[str, str]]], None] | None = None,
                 parallel: int = 4, progress: DirectoryProgress | None = None) -> None:
        self.state = state
        self.roster = roster
        self.store = store
        self.columns = columns
        self.interval = interval
        self.dry_run = dry_run
        self.report_dry_run = report_dry_run
        self.parallel = parallel
        self.progress = progress or LogProgress(every=10.0)  # shown for rounds of FILL items or more
        self.lags: deque[float] = deque(maxlen=100_000)  # seconds from a presence change to its write
        self.total_written = 0
        self.last_round: WriteRound | None = None  # what the last round left (the backlog metric)
        self._since = datetime.now(UTC)  # lags are measured for changes seen from here on (not the first fill)

    @property
    def account_id(self) -> str:
        return self.state.account_id

    def lag_percentiles(self) -> tuple[float | None, float | None]:
        if len(self.lags) < 2:
            return (self.lags[0], self.lags[0]) if self.lags else (None, None)
        q = statistics.quantiles(self.lags, n=100, method="inclusive")
        return q[49], q[94]

    async def run(self, stop: asyncio.Event) -> None:
        ticker = Ticker(self.interval, stop)
        while await ticker.next():
            if not self.state.validation:
                continue  # nothing validated yet
            try:
                await self.round(stop=stop)
            except GraphError as exc:
                self.state.note_failure(f"write-back failed (retried in {self.interval:g} s): {exc}")

    async def drain(self, deadline: float, stop: asyncio.Event | None = None) -> WriteRound:
        """Rounds until nothing is pending or ``deadline`` (monotonic) passes; the last round's figures."""
        total = WriteRound()
        while True:
            r = await self.round(stop=stop, deadline=deadline)
            total.pending = total.pending or r.pending
            total.written += r.written
            total.throttled += r.throttled
            total.failed = r.failed
            total.left = r.left
            if not r.left and not r.failed or time.monotonic() >= deadline or (stop and stop.is_set()):
                return total
            if r.failed and not r.left and not r.written:
                return total  # only permanent failures remain
            await asyncio.sleep(min(1.0, max(0.0, deadline - time.monotonic())))

    def desired(self) -> dict[int, dict[str, str]]:
        by_item = {p.agent_item_id: p for p in self.state.presences}
        cols = self.columns
        return {v.item_id: writeback_values(v, by_item.get(v.item_id), cols) for v in self.state.validation}

    async def round(self, *, stop: asyncio.Event | None = None, deadline: float | None = None) -> WriteRound:
        t0 = time.monotonic()
        desired = self.desired()
        queue = await asyncio.to_thread(self.store.writeback_queue, self.account_id, desired, datetime.now(UTC))
        result = WriteRound(pending=len(queue))
        if not queue:
            return result
        if self.dry_run:
            if self.report_dry_run is not None:
                self.report_dry_run({item: values for item, values, _ in queue})
            return result
        presence_of = {p.agent_item_id: p for p in self.state.presences}
        todo: dict[int, Mapping[str, str]] = {item: values for item, values, _ in queue}
        shown = len(queue) >= FILL  # the first fill of a large list takes minutes: say how far it has come
        not_before = 0.0
        while todo:
            if (stop is not None and stop.is_set()) or (deadline is not None and time.monotonic() >= deadline):
                break
            wait = not_before - time.monotonic()
            if wait > 0 and await sleep_or_stop(stop or asyncio.Event(), wait):
                break
            batch = dict(islice(todo.items(), GROUP * self.parallel))  # oldest first (dicts keep order)
            self.store.check_lease(self.account_id, "the Agent-list write-back")  # several replicas: still ours?
            res = await self.roster.write(batch)  # the roster source paces itself with the same RU budget
            for item in res.done:
                todo.pop(item, None)
            for item, why in res.failed.items():
                todo.pop(item, None)
                result.failed[item] = why
            if res.throttled:
                result.throttled += len(res.throttled)
                # An item that came back without advice (a cut-off answer, a 5xx) waits a second: the service
                # may have throttled it in an answer that never arrived, with a Retry-After nobody saw.
                ra = max((v or NO_ADVICE for v in res.throttled.values()), default=NO_ADVICE)
                not_before = time.monotonic() + ra
            if res.done:
                written = {item: batch[item] for item in res.done}
                await asyncio.to_thread(self.store.mark_written, self.account_id, written)
                now = datetime.now(UTC)
                for item in res.done:
                    p = presence_of.get(item)
                    if (p is not None and not p.stale and p.observed_at >= self._since
                            and self.columns.availability in written[item]):
                        self.lags.append(max(0.0, (now - p.observed_at).total_seconds()))
                result.written += len(res.done)
            if shown:
                self.progress.fill(self.account_id, result.written, result.pending)
        if shown:
            self.progress.fill_done(self.account_id, result.written, result.pending, time.monotonic() - t0)
        result.left = len(todo)
        result.seconds = time.monotonic() - t0
        self.total_written += result.written
        self.last_round = result
        self._log(result)
        return result

    def _log(self, r: WriteRound) -> None:
        p50, p95 = self.lag_percentiles()
        lag = f" lag p50={p50:.1f}s p95={p95:.1f}s" if p50 is not None and p95 is not None else ""
        log.info("account %s: write-back: pending=%d written=%d 429s=%d failed=%d left=%d in %.1fs%s",
                 self.account_id, r.pending, r.written, r.throttled, len(r.failed), r.left, r.seconds, lag)
        if r.failed:
            log.warning("account %s: %d item(s) not written back (retried at the next write-back): %s",
                        self.account_id, len(r.failed),
                        "; ".join(f"item {k}: {v}" for k, v in list(r.failed.items())[:5]))
