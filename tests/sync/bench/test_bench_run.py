"""``presence-sync bench`` end to end on a small tenant: every figure the targets need is measured."""

from __future__ import annotations

import json
from pathlib import Path

from sync.bench.run import BenchOptions, run_bench


def test_a_small_bench_measures_every_figure(tmp_path: Path) -> None:
    opts = BenchOptions(users=1500, agents=700, seconds=8.0, latency="presence=20:60,other=10", quota=50_000,
                        writeback_interval=2.0, baseline_seconds=2.0, sdk_chunks=1, multi_tenants=2,
                        multi_agents=300, multi_seconds=5.0, refusal_seconds=8.0, refusals="plain-paging,list-route",
                        replica_seconds=5.0, replicas=2)
    text, verdict = run_bench(opts, tmp_path / "bench.json")
    doc = json.loads((tmp_path / "bench.json").read_text(encoding="utf-8"))
    job, multi = doc["figures"]["job"], doc["figures"]["multi_tenant"]
    assert job["exit_code"] == 0 and job["ticks"] >= 3
    assert job["presence_calls_per_cycle"] == 2  # ceil(700 agents / 650)
    assert 0.5 < job["freshness_p50"] < 1.5 and job["first_complete_snapshot_s"] > 0
    assert job["busiest_30s"] > 0 and job["throttled"] == 0 and job["peak_rss_mb"] > 0
    assert job["agent_list_writes"] > 0 and job["agent_list_lag_p95"] is not None  # the write-back ran
    assert doc["figures"]["bare_httpx"]["presence_calls_per_cycle"] == 2
    assert doc["figures"]["msgraph_sdk"]["cpu_per_cycle_median"] > 0
    assert multi["accounts"] == 2 and multi["freshness_p95"] is not None
    assert {t["status"] for t in doc["targets"]} <= {"PASS", "FAIL", "n/a"}
    assert "freshness p95" in text and verdict in ("PASS", "FAIL")
    rows = {r["name"]: r for r in doc["figures"]["refusals"]}
    assert set(rows) == {"plain-paging", "list-route"}
    assert rows["list-route"]["account"] == "delegated" and rows["plain-paging"]["account"] == "application"
    for row in rows.values():  # the cold start finishes on the fallbacks, and presence came first
        assert row["exit_code"] == 0, row
        assert 0 < row["first_presence_read_s"] <= row["first_complete_snapshot_s"] < 8.0, row
    keys = {t["key"] for t in doc["targets"]}
    assert "refusal:plain-paging:first_presence_read" in keys and "refusal:list-route:freshness_p95" in keys
    assert "refused request shapes" in text and "| plain-paging " in text
    scale = doc["figures"]["replica_scale"]
    single, shared = scale["single"], scale["shared"]
    assert single["replicas"] == 1 and shared["replicas"] == 2, scale
    for side in (single, shared):  # both read every agent of both tenants, and stopped cleanly
        assert side["agents"] == single["agents"] > 0 and side["freshness_p95"] is not None and side["cpu_seconds"] > 0, side
        assert set(side["exit_codes"]) == {0} and side["tracebacks"] == 0, side
    assert sorted(shared["accounts_held"]) == [1, 1] and scale["cpu_ratio"] > 0
    assert {"replicas_freshness_p95", "replicas_cpu_ratio", "replicas_balance"} <= keys
    assert "| replica scale " in text and "2 replicas: CPU per agent vs one process" in text
