"""The benchmark's targets, table and JSON file, on plain figure dicts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sync.bench.numbers import median, percentile
from sync.bench.report import (
    Target,
    machine_info,
    peak_rss_mb,
    render_report,
    render_table,
    targets_for,
    verdict,
    write_json,
)

KEYS = ["freshness_p95", "throttled", "busiest_30s", "cpu_vs_bare", "peak_rss", "first_complete_snapshot",
        "wall_vs_msgraph_sdk", "cpu_vs_msgraph_sdk", "multi_tenant_freshness_p95", "agent_list_lag_p95"]


def passing() -> dict[str, Any]:
    return {
        "machine": {"cpu_count": 2, "python": "3.11.7", "platform": "Linux"},
        "scenario": {"users": 100_000, "agents": 30_000, "seconds": 60, "interval": 1.0,
                     "latency": "presence=150:400,other=80"},
        "job": {"freshness_p50": 0.55, "freshness_p95": 0.98, "freshness_p99": 1.2, "cycle_wall_p50": 0.4,
                "cycle_wall_p95": 0.6, "cpu_per_cycle_median": 0.09, "cpu_per_cycle_p95": 0.12,
                "presence_calls_per_cycle": 46, "throttled": 0, "busiest_30s": 1380,
                "first_complete_snapshot_s": 6.5, "peak_rss_mb": 180.0, "agent_list_lag_p50": 4.0,
                "agent_list_lag_p95": 9.5, "writeback_interval": 5.0},
        "bare_httpx": {"cycle_wall_p50": 9.0, "cpu_per_cycle_median": 0.13, "presence_calls_per_cycle": 46,
                       "throttled": 0},
        "msgraph_sdk": {"cycle_wall_p50": 110.0, "cpu_per_cycle_median": 100.0, "presence_calls_per_cycle": 46,
                        "throttled": 0},
        "multi_tenant": {"tenants": 10, "agents_each": 3000, "freshness_p95": 1.0},
    }


def failing() -> dict[str, Any]:
    f = passing()
    f["job"].update({"freshness_p95": 1.3, "throttled": 4, "busiest_30s": 1490, "cpu_per_cycle_median": 0.2,
                     "peak_rss_mb": 300.0, "first_complete_snapshot_s": 12.0, "cycle_wall_p50": 3.0,
                     "agent_list_lag_p95": 10.5})
    f["msgraph_sdk"]["cpu_per_cycle_median"] = 15.0
    f["multi_tenant"]["freshness_p95"] = 1.06
    return f


def by_key(targets: list[Target]) -> dict[str, Target]:
    return {t.key: t for t in targets}


def test_every_target_passes_on_good_figures() -> None:
    targets = targets_for(passing())
    assert [t.key for t in targets] == KEYS
    assert [t.status for t in targets] == ["PASS"] * len(KEYS)
    assert verdict(targets) == "PASS"
    t = by_key(targets)
    assert t["cpu_vs_bare"].limit == 0.13 and t["cpu_vs_bare"].value == 0.09
    assert t["wall_vs_msgraph_sdk"].value == pytest.approx(275.0)
    assert t["cpu_vs_msgraph_sdk"].value == pytest.approx(100.0 / 0.09)
    assert t["agent_list_lag_p95"].limit == 10.0
    assert t["multi_tenant_freshness_p95"].name == "10 x 3,000 freshness p95"


def test_every_target_fails_on_bad_figures() -> None:
    targets = targets_for(failing())
    assert [t.status for t in targets] == ["FAIL"] * len(KEYS)
    assert verdict(targets) == "FAIL"
    t = by_key(targets)
    assert t["wall_vs_msgraph_sdk"].value == pytest.approx(110 / 3)
    assert t["cpu_vs_msgraph_sdk"].value == pytest.approx(75.0)


def test_limits_are_inclusive() -> None:
    f = passing()
    f["job"].update({"freshness_p95": 1.05, "busiest_30s": 1450, "cpu_per_cycle_median": 0.13,
                     "peak_rss_mb": 250.0, "first_complete_snapshot_s": 10.0, "agent_list_lag_p95": 10.0})
    assert verdict(targets_for(f)) == "PASS"


def test_missing_figures_are_not_applicable() -> None:
    f = passing()
    del f["msgraph_sdk"], f["multi_tenant"]
    f["job"]["peak_rss_mb"] = None
    f["job"]["writeback_interval"] = None
    f["bare_httpx"]["cpu_per_cycle_median"] = float("nan")
    t = by_key(targets_for(f))
    na = {k for k, v in t.items() if v.status == "n/a"}
    assert na == {"wall_vs_msgraph_sdk", "cpu_vs_msgraph_sdk", "multi_tenant_freshness_p95", "peak_rss",
                  "agent_list_lag_p95", "cpu_vs_bare"}
    assert all(t[k].passed is None for k in na)
    assert verdict(list(t.values())) == "PASS"  # n/a does not fail the run
    assert verdict(targets_for({})) == "n/a"
    assert [x.status for x in targets_for({})] == ["n/a"] * len(KEYS)


def test_a_zero_job_figure_gives_no_ratio() -> None:
    f = passing()
    f["job"]["cpu_per_cycle_median"] = 0.0
    assert by_key(targets_for(f))["cpu_vs_msgraph_sdk"].status == "n/a"


def test_target_text_and_validation() -> None:
    assert Target("freshness p95", 1.0, "<=", 1.05, "s").text == "<= 1.05 s"
    assert Target("x", 60.0, ">=", 50, "x").text == ">= 50x"
    assert Target("c", 1.0, "<=", 1450, "calls").text == "<= 1,450"
    assert Target("b", 0.1, "<=", 0.1234567, "s", limit_of="bare httpx").text == "<= 0.123 s (bare httpx)"
    assert Target("m", None, "<=", None, "s").text == "<= ?"
    with pytest.raises(ValueError):
        Target("bad", 1.0, "~", 1.0)


def test_table_has_the_columns_and_a_row_per_figure() -> None:
    f = passing()
    table = render_table(f, targets_for(f))
    lines = table.splitlines()
    assert [c.strip() for c in lines[0].strip("|").split("|")] == [
        "figure", "job", "bare httpx", "msgraph-sdk", "ratio", "target", "result"]
    assert set(lines[1]) <= {"|", "-", ":"}
    assert len({len(line) for line in lines}) == 1  # aligned
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.strip("|").split("|")] for line in lines[2:]}
    assert rows["freshness p95"][1:] == ["0.980 s", "-", "-", "", "<= 1.05 s", "PASS"]
    assert rows["cycle wall p50"][1:] == ["0.400 s", "9.000 s", "110 s", "sdk/job 275.0x", "sdk/job >= 50x",
                                          "PASS"]
    assert rows["CPU per cycle, median"][4:] == ["job/bare 0.69x", "<= 0.13 s (bare httpx)", "PASS"]
    assert rows["CPU per cycle, median (sdk)"][4:] == ["sdk/job 1111.1x", "sdk/job >= 100x", "PASS"]
    assert rows["busiest 30 s, presence calls"][1] == "1,380"
    assert rows["peak RSS"][1] == "180.0 MB"
    assert rows["10 x 3,000 freshness p95"][-1] == "PASS"
    assert sum(r[-1] == "PASS" for r in rows.values()) == len(KEYS)


def test_table_marks_failures_and_missing_figures() -> None:
    f = failing()
    del f["msgraph_sdk"]
    table = render_table(f)
    rows = {line.split("|")[1].strip(): line for line in table.splitlines()[2:]}
    assert rows["freshness p95"].rstrip(" |").endswith("FAIL")
    assert rows["CPU per cycle, median (sdk)"].rstrip(" |").endswith("n/a")
    assert "freshness p50" in rows  # informative rows stay when the job measured them
    table = render_table({"job": {"freshness_p95": 0.5}})
    assert "freshness p50" not in table and "PASS" in table


def test_report_has_scenario_table_and_verdict() -> None:
    text = render_report(failing())
    assert text.splitlines()[0] == ("scenario: 100,000 users / 30,000 agents, 60 s at --interval 1.0, "
                                    "latency presence=150:400,other=80")
    assert "machine: 2 CPUs, Python 3.11.7, Linux" in text
    assert text.rstrip().endswith("verdict: FAIL (0 passed, 10 failed, 0 n/a)")


def test_json_file(tmp_path: Path) -> None:
    f = passing()
    f["job"]["cycle_wall_p95"] = float("inf")
    f["scenario"]["fixtures"] = tmp_path
    path = write_json(tmp_path / "out" / "bench.json", f, targets_for(f))
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["verdict"] == "PASS"
    assert doc["figures"]["job"]["freshness_p95"] == 0.98
    assert doc["figures"]["job"]["cycle_wall_p95"] is None  # JSON has no infinity
    assert doc["figures"]["scenario"]["fixtures"] == str(tmp_path)
    assert [t["key"] for t in doc["targets"]] == KEYS
    first = doc["targets"][0]
    assert first == {"key": "freshness_p95", "name": "freshness p95", "value": 0.98, "op": "<=", "limit": 1.05,
                     "unit": "s", "limit_of": "", "status": "PASS"}
    assert not list((tmp_path / "out").glob("*.tmp"))


def test_json_file_with_missing_figures(tmp_path: Path) -> None:
    doc = json.loads(write_json(tmp_path / "b.json", {"job": {"throttled": 2}}).read_text(encoding="utf-8"))
    assert doc["verdict"] == "FAIL"
    assert {t["key"]: t["status"] for t in doc["targets"]}["throttled"] == "FAIL"
    assert sum(t["status"] == "n/a" for t in doc["targets"]) == len(KEYS) - 1


def test_measurements_of_this_process() -> None:
    assert 1.0 < peak_rss_mb() < 4096
    m = machine_info()
    assert set(m) == {"cpu_count", "python", "platform"} and m["cpu_count"] >= 1


def test_order_statistics() -> None:
    assert median([]) is None and percentile([], 95) is None
    assert median([3.0, 1.0, 2.0]) == 2.0
    values = [float(i) for i in range(1, 21)]
    assert percentile(values, 95) == 19.0 and percentile(values, 100) == 20.0 and percentile(values, 0) == 1.0
    with pytest.raises(ValueError):
        percentile(values, 101)
