"""The job's side of the benchmark: run ``presence-sync run --interval 1`` in this process against the tenant,
from an empty state directory, for N seconds, and measure it.

Freshness comes from the tenant's own log of presence reads (the time between two reads of the same agent),
measured from the first complete snapshot on; CPU per cycle is this process's CPU over those steady-state ticks
(roster re-reads, directory delta and write-back included) divided by the ticks.
"""

from __future__ import annotations

import asyncio
import resource
import statistics
import time
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

from ..config import load_settings
from ..demo import app_account_xml, delegated_account_xml
from ..job import run_job
from ..models import CycleResult
from ..scheduler import Scheduler
from ..secrets import KeyStore
from .numbers import percentile
from .report import peak_rss_mb
from .tenant import TenantProcess

__all__ = ["bench_config", "measure_job"]


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def bench_config(info: dict[str, Any], state: Path, ca_file: Path, path: Path, *, quota: int,
                 writeback_interval: float, delegated: bool = False) -> Path:
    """A config.xml with one account per tenant of the local tenant: application permissions, or delegated
    ones (a service account's password) with ``delegated``."""
    keys = KeyStore(state, env={})
    base = info["base_url"]
    account_xml = delegated_account_xml if delegated else app_account_xml
    accounts = [account_xml(t, keys, base) for t in info["tenants"]]
    xml = ('<?xml version="1.0" encoding="utf-8"?>\n<Configuration>\n  <PresenceProvider>\n'
           f'    <MsGraphPresenceSource enabled="true" CaBundle={quoteattr(str(ca_file.resolve()))}>\n'
           f'    <WriteBack Interval="{writeback_interval:g}" ResourceUnitsPerMinute="{quota}"/>\n'
           "    <Accounts>\n" + "\n".join(accounts) + "\n    </Accounts>\n"
           "    </MsGraphPresenceSource>\n  </PresenceProvider>\n</Configuration>\n")
    path.write_text(xml, encoding="utf-8")
    return path


def measure_job(tenant: TenantProcess, work: Path, *, seconds: float, interval: float = 1.0,
                quota: int = 6250, writeback_interval: float = 60.0, delegated: bool = False) -> dict[str, Any]:
    """Run the job for ``seconds`` and return the ``job`` section of the figures."""
    state = work / "state"
    config = bench_config(tenant.info, state, tenant.ca_file, work / "config.xml", quota=quota,
                          writeback_interval=writeback_interval, delegated=delegated)
    settings, _ = load_settings(config, {"state_dir": state, "out_dir": work / "out", "interval": interval},
                                env={})
    accounts = len(tenant.info["tenants"])
    t0 = time.monotonic()
    marks: dict[str, Any] = {"complete": set(), "first_complete": None, "steady_cpu": None, "steady_at": None,
                             "reading": set(), "first_presence": None}
    results: list[CycleResult] = []
    every: list[CycleResult] = []
    sched_box: list[Scheduler] = []

    tick_cpu: list[float] = []
    last = [0.0]

    def on_cycle(n: int, rs: list[CycleResult]) -> None:
        every.extend(rs)
        now_cpu = _cpu()
        if marks["steady_at"] is not None and accounts == 1:
            tick_cpu.append(now_cpu - last[0])
        last[0] = now_cpu
        for r in rs:
            if r.presences and marks["first_presence"] is None:
                marks["reading"].add(r.account_id)
                if len(marks["reading"]) == accounts:  # every account has read presence for some agents
                    marks["first_presence"] = time.monotonic() - t0
            if marks["steady_at"] is not None:
                results.append(r)
            elif "directory still loading" not in r.note and r.presences:
                marks["complete"].add(r.account_id)
                if len(marks["complete"]) == accounts:
                    marks["first_complete"] = time.monotonic() - t0
                    tenant.control("POST", "/_emulator/presence-reads/reset")
                    marks["steady_at"], marks["steady_cpu"] = time.monotonic(), _cpu()

    report = asyncio.run(run_job(settings, install_signals=False, on_cycle=on_cycle, run_for=seconds,
                                 on_start=sched_box.append))
    end_cpu, end = _cpu(), time.monotonic()
    reads = tenant.control("GET", "/_emulator/presence-reads")
    stats = tenant.stats()
    lags: list[float] = []
    for rt in sched_box[0].runtimes if sched_box else []:
        lags += list(rt.loops().writeback.lags)
    ticks = len(results) / max(1, accounts)
    cpu = (end_cpu - marks["steady_cpu"]) / ticks if ticks and marks["steady_cpu"] is not None else None
    walls = [r.duration_s for r in results]
    return {
        "exit_code": report.exit_code,
        "accounts": accounts,
        "ticks": len(results),
        "steady_seconds": end - marks["steady_at"] if marks["steady_at"] else None,
        "freshness_p50": reads.get("gap_p50"), "freshness_p95": reads.get("gap_p95"),
        "freshness_p99": reads.get("gap_p99"), "freshness_max": reads.get("gap_max"),
        "cycle_wall_p50": percentile(walls, 50), "cycle_wall_p95": percentile(walls, 95),
        "cpu_per_cycle_median": cpu,  # everything amortised: all of the process's CPU over the steady ticks
        "cpu_per_cycle_p95": None,
        # One tick's CPU, between two ticks (single-tenant scenario): the typical tick, with whatever else ran then.
        "cpu_per_tick_p50": percentile(tick_cpu, 50), "cpu_per_tick_p95": percentile(tick_cpu, 95),
        "presence_calls_per_cycle": statistics.median(r.requests for r in results) if results else None,
        "throttled": sum(r.throttled for r in every),  # presence 429s the job saw, from the first tick on
        "tenant_429s": stats.get("throttled"),
        "busiest_30s": reads.get("busiest_30s_calls"),
        "first_presence_read_s": marks["first_presence"],
        "first_complete_snapshot_s": marks["first_complete"],
        "peak_rss_mb": peak_rss_mb(),
        "agent_list_lag_p50": percentile(lags, 50), "agent_list_lag_p95": percentile(lags, 95),
        "agent_list_writes": len(lags),
        "writeback_interval": writeback_interval,
        "items_written": stats.get("requests", {}).get("graph.listitem.update"),
    }
