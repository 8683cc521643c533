"""Prometheus metrics of one job, in a registry of its own (never the process-wide one).

Updated on the hot path (one cheap call each): requests by endpoint and status (every HTTP answer), the cycle
duration histogram and cycle counts (one call per presence tick). Everything else is computed when Prometheus
scrapes, from the snapshots the loops already publish: agents by validation status, presences by availability,
presence age, throttling, write-back backlog and Agent-list lag, token and secret expiry, incidents, and whether
an account is stalled (no presence read for 3 intervals) and for how long it has read none. With several
replicas: the accounts this replica holds, its lease changes and renewal latency; the per-account figures
cover only the accounts it holds.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ..models import CycleResult
from .endpoints import endpoint_of
from .monitor import Monitor

__all__ = ["CONTENT_TYPE", "JobMetrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
P = "presence_sync_"
CYCLE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)


def _p95(ordered: Sequence[float]) -> float:
    """The 95th percentile (nearest rank) of values already sorted."""
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)] if ordered else 0.0


class JobMetrics:
    """The registry, the hot-path instruments and the scrape-time collector."""

    def __init__(self, monitor: Monitor) -> None:
        self.monitor = monitor
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(P + "requests", "HTTP requests answered (or failed: status=error), by endpoint",
                                ["account", "endpoint", "status"], registry=self.registry)
        self.cycle_seconds = Histogram(P + "cycle_duration_seconds", "Duration of presence ticks",
                                       ["account"], buckets=CYCLE_BUCKETS, registry=self.registry)
        self.cycles = Counter(P + "cycles", "Presence ticks, by result (ok or failed)", ["account", "result"],
                              registry=self.registry)
        self._children: dict[tuple[str, str, int], Any] = {}
        self._lock = threading.Lock()
        self.registry.register(_Snapshot(monitor))

    def count_request(self, account: str, url: str, status: int) -> None:
        """One HTTP answer (any thread); ``status`` 0 means no answer (network error)."""
        if not account:
            return  # before the accounts' loops run (the start-up's OpenID discovery)
        key = (account, url.split("?", 1)[0], status)
        child = self._children.get(key)
        if child is None:
            with self._lock:
                child = self.requests.labels(account, endpoint_of(url), str(status) if status else "error")
                if len(self._children) < 10_000:  # paths carry ids: keep the memo bounded
                    self._children[key] = child
        child.inc()

    def cycle_done(self, account: str, result: CycleResult) -> None:
        self.cycle_seconds.labels(account).observe(result.duration_s)
        self.cycles.labels(account, "failed" if result.error else "ok").inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _Snapshot(Collector):
    """Gauges computed at scrape time from the loops' current snapshots."""

    def __init__(self, monitor: Monitor) -> None:
        self.monitor = monitor
        # The lag percentiles sort up to 100,000 values (about 40 ms): computed again only after new writes.
        self._lags: dict[str, tuple[tuple[int, int], tuple[float | None, float | None]]] = {}

    def collect(self) -> Iterator[Metric]:
        m = self.monitor
        now = time.time()
        g = {name: GaugeMetricFamily(P + name, doc, labels=labels) for name, doc, labels in _GAUGES}
        c = {name: CounterMetricFamily(P + name, doc, labels=labels) for name, doc, labels in _COUNTERS}
        self._replica(g, c)
        for account, w in m.accounts.items():
            if m.replica is not None:
                g["account_held"].add_metric([account], 1.0 if m.holds(account) else 0.0)
                if not m.holds(account):
                    continue  # another replica runs it: its figures are that replica's
            self._loops(account, w.loops, now, g, c)
            rt = w.runtime
            expires_at = getattr(getattr(rt, "auth", None), "token_expires_at", None)
            if expires_at:
                g["token_expiry_seconds"].add_metric([account], expires_at - now)
            if w.config.secret_expires is not None:
                e = w.config.secret_expires
                g["client_secret_expiry_seconds"].add_metric(
                    [account], datetime(e.year, e.month, e.day, tzinfo=UTC).timestamp() - now)
            if w.last_good is not None:
                g["last_good_cycle_timestamp_seconds"].add_metric([account], w.last_good)
            g["needs_human"].add_metric([account], 1.0 if m.needs_human_now(account) else 0.0)
            g["account_stalled"].add_metric([account], 1.0 if w.stalled else 0.0)
            age = m.read_age(account)
            if age is not None:
                g["presence_read_age_seconds"].add_metric([account], age)
            g["consecutive_failures"].add_metric([account], float(w.failures))
            for kind in m.book.open_kinds(account):
                g["incident_open"].add_metric([account, kind], 1.0)
        yield from g.values()
        yield from c.values()

    def _replica(self, g: dict[str, GaugeMetricFamily], c: dict[str, CounterMetricFamily]) -> None:
        r = self.monitor.replica
        if r is None:
            return
        rid = r.replica_id
        g["replica_accounts_held"].add_metric([rid], float(len(r.held)))
        c["lease_changes"].add_metric([rid], float(r.changes))
        g["lease_database_failing"].add_metric([rid], 1.0 if r.failing else 0.0)
        last = list(r.renewal_seconds)
        if last:
            ordered = sorted(last)
            g["lease_renewal_seconds"].add_metric([rid, "0.5"], ordered[(len(ordered) - 1) // 2])
            g["lease_renewal_seconds"].add_metric([rid, "0.95"], _p95(ordered))
            g["lease_renewal_seconds"].add_metric([rid, "1"], ordered[-1])

    def _loops(self, account: str, loops: Any, now: float, g: dict[str, GaugeMetricFamily],
               c: dict[str, CounterMetricFamily]) -> None:
        if loops is None:
            return
        state = loops.state
        by_status = {"ok": 0, "fixed": 0, "invalid": 0}
        for v in state.validation:
            by_status[v.status] = by_status.get(v.status, 0) + 1
        for status, n in by_status.items():
            g["agents"].add_metric([account, status], float(n))
        by_avail: dict[str, int] = {}
        ages: list[float] = []
        observed = state.observed_at.timestamp() if state.observed_at is not None else now
        stale = 0
        for p in state.presences:
            if p.stale:
                stale += 1
                ages.append(now - p.observed_at.timestamp())  # when its last known state began: an upper bound
            else:
                by_avail[p.availability] = by_avail.get(p.availability, 0) + 1
                ages.append(now - observed)
        for avail, n in sorted(by_avail.items()):
            g["presences"].add_metric([account, avail], float(n))
        g["presences_stale"].add_metric([account], float(stale))
        if ages:
            ages.sort()
            g["presence_age_oldest_seconds"].add_metric([account], ages[-1])
            g["presence_age_p95_seconds"].add_metric([account], _p95(ages))
        throttled = 0
        for graph in (loops.presence_graph, loops.graph):
            throttled += graph.counters.throttled
        c["throttled"].add_metric([account], float(throttled))
        budget = loops.presence_graph.budgets.get("presence")
        if budget is not None:
            c["retry_after_seconds"].add_metric([account], float(getattr(budget, "retry_after", 0.0)))
            c["budget_wait_seconds"].add_metric([account], float(getattr(budget, "waited", 0.0)))
        wb = loops.writeback
        last = getattr(wb, "last_round", None)
        if loops.writeback_enabled:
            g["writeback_backlog"].add_metric([account], float(last.left + len(last.failed)) if last else 0.0)
            c["writeback_written"].add_metric([account], float(wb.total_written))
            p50, p95 = self._lag(account, wb)
            if p50 is not None and p95 is not None:
                g["agent_list_lag_p50_seconds"].add_metric([account], p50)
                g["agent_list_lag_p95_seconds"].add_metric([account], p95)


    def _lag(self, account: str, wb: Any) -> tuple[float | None, float | None]:
        key = (wb.total_written, len(wb.lags))
        cached = self._lags.get(account)
        if cached is not None and cached[0] == key:
            return cached[1]
        try:
            value: tuple[float | None, float | None] = wb.lag_percentiles()
        except RuntimeError:  # the lags were appended to while being read: try again at the next scrape
            return None, None
        self._lags[account] = (key, value)
        return value


_A = ["account"]
_GAUGES: tuple[tuple[str, str, list[str]], ...] = (
    ("agents", "Agent-list items by UPN validation status (ok, fixed, invalid)", ["account", "status"]),
    ("presences", "Agents with a fresh presence, by availability", ["account", "availability"]),
    ("presences_stale", "Agents whose presence could not be read this tick (last known value kept)", _A),
    ("presence_age_oldest_seconds", "Age of the oldest presence held (seconds since Graph confirmed it)", _A),
    ("presence_age_p95_seconds", "95th percentile of the presence ages", _A),
    ("writeback_backlog", "Agent-list items still to write after the last write-back round", _A),
    ("agent_list_lag_p50_seconds", "Median time from a presence change to its value in the Agent list", _A),
    ("agent_list_lag_p95_seconds", "95th percentile of that lag", _A),
    ("token_expiry_seconds", "Seconds until the access token last acquired expires", _A),
    ("client_secret_expiry_seconds", "Seconds until the client secret expires (Account/@ClientSecretExpires)", _A),
    ("last_good_cycle_timestamp_seconds", "Unix time of the last presence tick without error", _A),
    ("needs_human", "1 while the account needs a human (login, consent, secret)", _A),
    ("account_stalled", "1 while the account has read no presence for 3 intervals (the log says why)", _A),
    ("presence_read_age_seconds", "Seconds since the account last read presence (since its loops started, if "
     "never)", _A),
    ("consecutive_failures", "Failed cycles or loop steps since the last good cycle", _A),
    ("incident_open", "1 for each open incident, by kind", ["account", "kind"]),
    ("account_held", "Several replicas: 1 while this replica holds the account's lease", _A),
    ("replica_accounts_held", "Several replicas: accounts this replica holds", ["replica"]),
    ("lease_renewal_seconds", "Several replicas: latency of the last 50 lease rounds' renewals, by quantile "
     "(0.5, 0.95, 1 = the slowest)", ["replica", "quantile"]),
    ("lease_database_failing", "Several replicas: 1 while the lease database does not answer (no account is "
     "run)", ["replica"]),
)
_COUNTERS: tuple[tuple[str, str, list[str]], ...] = (
    ("throttled", "HTTP 429 answers from Graph (envelopes and $batch items)", _A),
    ("retry_after_seconds", "Seconds the presence budget paused on Retry-After (per app and tenant)", _A),
    ("budget_wait_seconds", "Seconds presence calls waited for the presence budget (per app and tenant)", _A),
    ("writeback_written", "Agent-list items written", _A),
    ("lease_changes", "Several replicas: leases this replica took or gave up", ["replica"]),
)
