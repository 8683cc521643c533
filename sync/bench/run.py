"""``presence-sync bench``: both scenarios, both baselines, one table and one JSON file.

1. The local tenant in its own process (100,000 users / 30,000 agents, latency model switched on); the job at
   ``--interval 1`` from an empty state directory for N seconds; then, against the same tenant with fresh
   budgets, the bare httpx loop and the official msgraph-sdk (sampled calls, scaled to a whole cycle).
2. Ten tenants of 3,000 agents served by one local tenant, all in one job process.
3. The refusal scenarios (refusals.py), against the tenant of scenario 1: the job's cold start once per set of
   refused request shapes, each from an empty state directory.
4. Replica scale (replicas.py), against the tenants of scenario 2: 3 replicas sharing a PostgreSQL store, and one
   process alone as the baseline (needs Debian's postgresql).
"""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .baselines import MsgraphSdkMissing, run_bare_httpx, run_msgraph_sdk
from .job import measure_job
from .refusals import pick_scenarios, refusal_targets, render_refusals, run_refusals
from .replicas import render_replicas, replica_targets, run_replica_scale
from .report import machine_info, render_report, targets_for, verdict, write_json
from .tenant import MODEL_LATENCY, TenantProcess, start_tenant

__all__ = ["BenchOptions", "run_bench"]


@dataclass(frozen=True)
class BenchOptions:
    users: int = 100_000
    agents: int = 30_000
    seconds: float = 120.0
    interval: float = 1.0
    latency: str = MODEL_LATENCY
    quota: int = 6250  # SharePoint RU per minute: the tier of a tenant with more than 50,000 licences
    writeback_interval: float = 60.0
    baseline_seconds: float = 20.0
    sdk_chunks: int = 2
    multi_tenants: int = 10
    multi_agents: int = 3000
    multi_seconds: float = 90.0
    refusal_seconds: float = 45.0  # per refusal scenario (0: skip them)
    refusals: str | None = None  # comma-separated scenario names (refusals.SCENARIOS); None: every one
    replica_seconds: float = 60.0  # the replica scale scenario's steady part, each side (0: skip it)
    replicas: int = 3
    seed: int = 7


def _say(msg: str) -> None:
    print(msg, flush=True)


def run_bench(opts: BenchOptions, json_out: Path) -> tuple[str, str]:
    """Run everything; returns (the printed report, the verdict)."""
    figures: dict[str, Any] = {"machine": machine_info(), "scenario": {
        "users": opts.users, "agents": opts.agents, "seconds": opts.seconds, "interval": opts.interval,
        "latency": opts.latency, "sharepoint_ru_per_minute": opts.quota}}
    ru = ["--sharepoint-ru-per-minute", str(opts.quota)]
    with tempfile.TemporaryDirectory(prefix="presence-bench-") as tmp_s:
        tmp = Path(tmp_s)
        _say(f"scenario 1: {opts.users:,} users, {opts.agents:,} agents, latency {opts.latency}, "
             f"job for {opts.seconds:g} s")
        with start_tenant(tmp / "one", [("bigcorp", opts.users, opts.agents)], seed=opts.seed,
                          latency=opts.latency, latency_fallback=None, extra_args=ru) as tenant:
            (tmp / "job").mkdir()
            figures["job"] = measure_job(tenant, tmp / "job", seconds=opts.seconds, interval=opts.interval,
                                         quota=opts.quota, writeback_interval=opts.writeback_interval)
            ids = tenant.agent_ids("bigcorp")
            tenant.fresh_budgets()
            _say(f"baseline: bare httpx, {opts.baseline_seconds:g} s")
            figures["bare_httpx"] = asyncio.run(run_bare_httpx(tenant, "bigcorp", ids, opts.baseline_seconds,
                                                               opts.interval)).figures()
            tenant.fresh_budgets()
            _say(f"baseline: msgraph-sdk, {opts.sdk_chunks} calls per cycle sampled and scaled to a whole cycle")
            try:
                figures["msgraph_sdk"] = asyncio.run(run_msgraph_sdk(
                    tenant, "bigcorp", ids, opts.baseline_seconds, opts.interval, max_cycles=3,
                    sample_chunks=opts.sdk_chunks)).figures()
            except MsgraphSdkMissing as exc:
                _say(f"msgraph-sdk baseline skipped: {exc}")
            if opts.refusal_seconds > 0:
                def measure(t: TenantProcess, work: Path, delegated: bool) -> dict[str, Any]:
                    return measure_job(t, work, seconds=opts.refusal_seconds, interval=opts.interval,
                                       quota=opts.quota, writeback_interval=opts.writeback_interval,
                                       delegated=delegated)

                _say(f"refusals: the job's cold start against refused request shapes, {opts.refusal_seconds:g} s each")
                figures["refusals"] = run_refusals(tenant, tmp / "refusals", measure,
                                                   pick_scenarios(opts.refusals), say=_say)
        if opts.multi_tenants:
            n, each = opts.multi_tenants, opts.multi_agents
            _say(f"scenario 2: {n} tenants x {each:,} agents in one process, job for {opts.multi_seconds:g} s")
            tenants = [(f"t{i:02d}", each * 2, each) for i in range(1, n + 1)]
            with start_tenant(tmp / "many", tenants, seed=opts.seed, latency=opts.latency,
                              latency_fallback=None, extra_args=ru) as many:
                (tmp / "multi").mkdir()
                multi = measure_job(many, tmp / "multi", seconds=opts.multi_seconds, interval=opts.interval,
                                    quota=opts.quota, writeback_interval=opts.writeback_interval)
                if opts.replica_seconds > 0:
                    many.fresh_budgets()
                    _say(f"scenario 4: {opts.replicas} replicas sharing a PostgreSQL store, and one process, "
                         f"{opts.replica_seconds:g} s each")
                    figures["replica_scale"] = run_replica_scale(
                        many, tmp / "replicas", replicas=opts.replicas, seconds=opts.replica_seconds,
                        quota=opts.quota, writeback_interval=opts.writeback_interval, say=_say)
            figures["multi_tenant"] = {"tenants": n, "agents_each": each, **multi}
    refusals = figures.get("refusals") or []
    scale = figures.get("replica_scale")
    scale_targets = replica_targets(scale) if scale else []
    targets = targets_for(figures) + refusal_targets(refusals) + scale_targets
    sections = ((render_refusals(refusals, targets),) if refusals else ()) + (
        (render_replicas(scale, scale_targets),) if scale else ())
    text = render_report(figures, targets, sections=sections)
    write_json(json_out, figures, targets)
    return text, verdict(targets)
