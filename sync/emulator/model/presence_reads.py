"""Presence read log: when each user's presence was last read, as ground truth for the job's freshness.

A job that promises "every agent's presence is at most N seconds old" is judged here: per
(tenant, user id) the monotonic time of the last successful read, and the gaps between
consecutive reads of an id in a 1 ms histogram up to 120 s (plus the largest gap), so tens of
thousands of ids per second for minutes cost a dict update and a list increment each, never a
growing list. Also the busiest rolling 30 s of presence calls (Graph's 1,500 per 30 s budget), and the
windows in which the Retry-After of an injected presence 429 or 503 forbade reads (wall-clock epoch seconds,
so a soak can tell a state no well-behaved client could have read from one the job missed; a 429 for using up
the budget is the caller's own doing and is not logged here). And per tenant, which access token made each call
(a short hash), so that two processes reading one tenant at the same time show up: ``interleaved`` counts the
calls made with one token between two calls of another token less than ``within`` seconds apart (a handover
from one reader to the next is a ``token_changes``, never an interleaving).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from itertools import accumulate
from typing import Any

__all__ = ["PresenceReads"]

BUCKETS = 120_000  # 1 ms buckets up to 120 s; one more for everything longer
CALL_WINDOW = 30.0
PAUSES_KEPT = 10_000  # the latest Retry-After windows per tenant
CALLERS_KEPT = 200_000  # the latest calls per tenant with the token that made them


class _Log:
    """One tenant's figures (or every tenant's, for the merged call window)."""

    def __init__(self) -> None:
        self.last: dict[str, float] = {}
        self.hist = [0] * (BUCKETS + 1)
        self.gap_max = 0.0
        self.reads = 0
        self.calls = 0
        self.window: deque[float] = deque()
        self.busiest = 0
        self.first: float | None = None
        self.pauses: deque[tuple[float, float]] = deque(maxlen=PAUSES_KEPT)  # wall-clock Retry-After windows
        self.callers: deque[tuple[float, str]] = deque(maxlen=CALLERS_KEPT)  # (arrival, token hash)

    def interleaved(self, within: float) -> tuple[int, int]:
        """(calls made with a token between two calls of another one less than ``within`` seconds apart: two
        readers at once; changes of token: one reader handing over to the next)."""
        calls = sorted(self.callers)
        both = sum(1 for (t0, a), (_, b), (t2, c) in zip(calls, calls[1:], calls[2:], strict=False)
                   if a == c != b and t2 - t0 < within)
        return both, sum(1 for (_, a), (_, b) in zip(calls, calls[1:], strict=False) if a != b)

    def call(self, now: float) -> None:
        self.calls += 1
        if self.first is None:
            self.first = now
        w = self.window
        w.append(now)
        while w[0] <= now - CALL_WINDOW:
            w.popleft()
        if len(w) > self.busiest:
            self.busiest = len(w)

    def ids(self, ids: Iterable[str], now: float) -> None:
        last, hist, n = self.last, self.hist, 0
        for uid in ids:
            n += 1
            prev = last.get(uid)
            last[uid] = now
            if prev is not None:
                gap = now - prev
                hist[min(int(gap * 1000), BUCKETS)] += 1
                if gap > self.gap_max:
                    self.gap_max = gap
        self.reads += n


def _quantile(hist: list[int], total: int, q: float, gap_max: float) -> float | None:
    """Upper edge of the 1 ms bucket holding the q-quantile gap (the largest gap past 120 s)."""
    if total == 0:
        return None
    want = q * total
    for i, c in enumerate(accumulate(hist)):
        if c >= want:
            return gap_max if i == BUCKETS else min((i + 1) / 1000, gap_max)
    return gap_max


class PresenceReads:
    """Records successful presence reads; ``summary(tenant_id | None)`` answers the control API."""

    def __init__(self, now: Callable[[], float] = time.monotonic) -> None:
        self._now = now
        self.reset()

    def reset(self) -> None:
        self._t0 = self._now()
        self._tenants: dict[str, _Log] = {}
        self._all = _Log()  # calls only: the busiest 30 s across tenants

    def record(self, tenant_id: str, ids: Iterable[str], at: float | None = None, caller: str = "") -> None:
        """One presence call answered 200 for ``ids`` (a single GET is a call with one id), logged at the time
        the call came in (``at``, before any modelled latency), as a request log would show it; ``caller``: the
        access token's hash."""
        now = self._now() if at is None else at
        log = self._tenants.get(tenant_id)
        if log is None:
            log = self._tenants[tenant_id] = _Log()
        log.call(now)
        if caller:
            log.callers.append((now, caller))
        self._all.call(now)
        log.ids(ids, now)

    def pause(self, tenant_id: str, seconds: float) -> None:
        """The fault layer answered a presence call of the tenant 429 or 503 with this Retry-After: no read
        before it ends."""
        log = self._tenants.get(tenant_id)
        if log is None:
            log = self._tenants[tenant_id] = _Log()
        now = time.time()
        log.pauses.append((now, now + seconds))

    def summary(self, tenant_id: str | None = None, within: float = 2.0) -> dict[str, Any]:
        logs = [self._tenants[tenant_id]] if tenant_id in self._tenants else [] if tenant_id else \
            list(self._tenants.values())
        if len(logs) == 1:
            hist = logs[0].hist
        else:
            hist = [sum(col) for col in zip(*(lg.hist for lg in logs), strict=True)] if logs else [0]
        total = sum(hist)
        gap_max = max((lg.gap_max for lg in logs), default=0.0)
        firsts = [lg.first for lg in logs if lg.first is not None]
        busiest = (logs[0].busiest if len(logs) == 1 else self._all.busiest) if logs else 0
        return {
            "reads": sum(lg.reads for lg in logs),
            "ids": sum(len(lg.last) for lg in logs),
            "calls": sum(lg.calls for lg in logs),
            "gap_p50": _quantile(hist, total, 0.50, gap_max),
            "gap_p95": _quantile(hist, total, 0.95, gap_max),
            "gap_p99": _quantile(hist, total, 0.99, gap_max),
            "gap_max": gap_max if total else None,
            "busiest_30s_calls": busiest,
            "first_read_at": round(min(firsts) - self._t0, 6) if firsts else None,
            "retry_after_pauses": sorted([round(a, 3), round(b, 3)] for lg in logs for a, b in lg.pauses),
            "callers": len({c for lg in logs for _, c in lg.callers}),
            "interleaved": sum(lg.interleaved(within)[0] for lg in logs), "within_s": within,
            "token_changes": sum(lg.interleaved(within)[1] for lg in logs),
        }
