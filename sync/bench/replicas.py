"""The replica scale scenario: the tenants of scenario 2 (10 x 3,000 agents) served by N replicas of
``presence-sync run --interval 1 --store postgresql://...`` against one local tenant, and, as the baseline
measured in the same run against the same tenant, one process of ``run`` alone (its SQLite store).

Each is measured the same way, as separate processes: from the moment every account reads presence (and, for
the replicas, every account is held and the leases have settled) the tenant's read log is reset and the CPU of
every job process (``/proc``) noted; after ``seconds`` the freshness comes from the tenant's read log and the CPU
per agent is the processes' CPU over agents x seconds. Targets: freshness p95 <= 1.05 s with N replicas, and
their CPU per agent within 1.2x of the single process's.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .failover import held_accounts
from .harness import Job
from .job import bench_config
from .postgres import TemporaryPostgres
from .report import FRESHNESS_LIMIT, Target, pipe_table
from .tenant import TenantProcess, cpu_seconds

__all__ = ["CPU_RATIO_LIMIT", "render_replicas", "replica_targets", "run_replica_scale"]

CPU_RATIO_LIMIT = 1.2  # CPU per agent of N replicas against one process
SETTLE = 120.0  # seconds at most until every account reads presence


def _reading(jobs: list[Job], accounts: int) -> bool:
    seen = {ln.split("account ", 1)[1].split(":", 1)[0] for j in jobs for _, ln in j.lines
            if ": agents=" in ln and "presences=0 " not in ln and "account " in ln}
    return len(seen) >= accounts


def _measure(tenant: TenantProcess, work: Path, *, replicas: int, url: str | None, seconds: float,
             quota: int, writeback_interval: float, say: Callable[[str], None]) -> dict[str, Any]:
    keys = work / "keys"
    config = bench_config(tenant.info, keys, tenant.ca_file, work / "config.xml", quota=quota,
                          writeback_interval=writeback_interval)
    env = {"PRESENCE_SYNC_KEY_FILE": str(keys / "secret.key")}
    accounts = len(tenant.info["tenants"])
    agents = sum(len(tenant.agent_ids(t["name"])) for t in tenant.info["tenants"])
    store = ["--store", url] if url else []
    jobs = [Job(["run", "--config", str(config), "--state-dir", str(work / f"state-{i}"), "--out",
                 str(work / "out"), "--interval", "1", *store], work, env=env) for i in range(replicas)]
    try:
        start = time.monotonic()
        while not _reading(jobs, accounts) and time.monotonic() - start < SETTLE:
            time.sleep(0.5)
        if not _reading(jobs, accounts):
            return {"replicas": replicas, "error": f"not every account read presence within {SETTLE:g} s"}
        settled = time.monotonic() - start
        time.sleep(10.0 if replicas > 1 else 2.0)  # the leases spread (a few renewals) and the cold start ends
        tenant.control("POST", "/_emulator/presence-reads/reset")
        cpu0 = sum(cpu_seconds(j.proc.pid) or 0.0 for j in jobs)
        t0 = time.monotonic()
        time.sleep(seconds)
        reads = tenant.control("GET", "/_emulator/presence-reads")
        cpu = sum(cpu_seconds(j.proc.pid) or 0.0 for j in jobs) - cpu0
        elapsed = time.monotonic() - t0
        held = [len(held_accounts(j)) for j in jobs]
    finally:
        codes = [j.stop(signal.SIGTERM, timeout=30) for j in jobs]
        for i, j in enumerate(jobs):  # each process's log, line by line with its arrival time
            (work / f"replica-{i}.log").write_text("".join(f"{t:.3f} {ln}\n" for t, ln in j.lines),
                                                   encoding="utf-8")
    p95 = reads.get("gap_p95")
    say(f"  {replicas} process(es): freshness p95 {'-' if p95 is None else format(p95, '.3f')} s, CPU {cpu:.1f} s "
        f"over {elapsed:.0f} s")
    return {"replicas": replicas, "accounts": accounts, "agents": agents, "reading_after_s": settled,
            "steady_seconds": elapsed, "freshness_p50": reads.get("gap_p50"), "freshness_p95": reads.get("gap_p95"),
            "freshness_max": reads.get("gap_max"), "busiest_30s": reads.get("busiest_30s_calls"),
            "cpu_seconds": cpu, "cpu_ms_per_agent_second": 1000 * cpu / (agents * elapsed) if agents else None,
            "accounts_held": held if url else None, "exit_codes": codes,
            "tracebacks": sum("Traceback" in j.text for j in jobs)}


def run_replica_scale(tenant: TenantProcess, work: Path, *, replicas: int = 3, seconds: float = 60.0,
                      quota: int = 6250, writeback_interval: float = 60.0,
                      say: Callable[[str], None] = print) -> dict[str, Any]:
    """The single process first, then ``replicas`` sharing a PostgreSQL store; both against ``tenant``."""
    (work / "single").mkdir(parents=True, exist_ok=True)
    (work / "shared").mkdir(parents=True, exist_ok=True)
    single = _measure(tenant, work / "single", replicas=1, url=None, seconds=seconds, quota=quota,
                      writeback_interval=writeback_interval, say=say)
    tenant.fresh_budgets()
    with TemporaryPostgres() as pg:
        url = pg.create_database("scale")
        shared = _measure(tenant, work / "shared", replicas=replicas, url=url, seconds=seconds, quota=quota,
                          writeback_interval=writeback_interval, say=say)
    a, b = single.get("cpu_ms_per_agent_second"), shared.get("cpu_ms_per_agent_second")
    return {"single": single, "shared": shared, "cpu_ratio": b / a if a and b else None}


def replica_targets(fig: dict[str, Any]) -> list[Target]:
    shared = fig.get("shared") or {}
    n = shared.get("replicas", 3)
    spread = shared.get("accounts_held") or []
    return [
        Target(f"{n} replicas: freshness p95", shared.get("freshness_p95"), "<=", FRESHNESS_LIMIT, "s",
               "replicas_freshness_p95"),
        Target(f"{n} replicas: CPU per agent vs one process", fig.get("cpu_ratio"), "<=", CPU_RATIO_LIMIT, "x",
               "replicas_cpu_ratio"),
        Target(f"{n} replicas: held accounts, max - min", max(spread) - min(spread) if spread else None, "<=", 1,
               "", "replicas_balance"),
    ]


def render_replicas(fig: dict[str, Any], targets: list[Target]) -> str:
    single, shared = fig.get("single") or {}, fig.get("shared") or {}

    def cell(d: dict[str, Any], key: str, fmt: str) -> str:
        v = d.get(key)
        return "-" if v is None else format(v, fmt)

    rows = [[label, cell(single, key, fmt), cell(shared, key, fmt)] for label, key, fmt in (
        ("freshness p50 (s)", "freshness_p50", ".3f"), ("freshness p95 (s)", "freshness_p95", ".3f"),
        ("freshness max (s)", "freshness_max", ".3f"), ("CPU per agent and second (ms)", "cpu_ms_per_agent_second",
                                                         ".4f"),
        ("busiest 30 s, presence calls, all tenants", "busiest_30s", "d"), ("every account reading after (s)", "reading_after_s",
                                                               ".1f"))]
    rows.append(["accounts held per replica", "-", ", ".join(map(str, shared.get("accounts_held") or [])) or "-"])
    table = pipe_table(["replica scale", "1 process", f"{shared.get('replicas', 3)} replicas"], rows, right={1, 2})
    judged = pipe_table(["target", "measured", "limit", "result"],
                        [[t.name, "-" if t.value is None else f"{t.value:.3g}", t.text, t.status] for t in targets],
                        right={1})
    return table + "\n\n" + judged
