"""The benchmark's figures, its targets (PASS/FAIL), a plain-text table and a JSON file.

The figures are one dict, built by whoever ran the benchmark; any value may be None (not measured) and any
section may be missing::

    {"machine": {"cpu_count", "python", "platform"},
     "scenario": {"users", "agents", "seconds", "interval", "latency"},
     "job": {"freshness_p50", "freshness_p95", "freshness_p99", "cycle_wall_p50", "cycle_wall_p95",
             "cpu_per_cycle_median", "cpu_per_cycle_p95", "presence_calls_per_cycle", "throttled",
             "busiest_30s", "first_complete_snapshot_s", "peak_rss_mb", "agent_list_lag_p50",
             "agent_list_lag_p95", "writeback_interval"},
     "bare_httpx": {"cycle_wall_p50", "cpu_per_cycle_median", "presence_calls_per_cycle", "throttled"},
     "msgraph_sdk": {the same},
     "multi_tenant": {"tenants", "agents_each", "freshness_p95", ...}}

Times are seconds, memory MB, CPU seconds per cycle of the measured process. A target whose figure (or limit)
is missing is "n/a": neither passed nor failed.
"""

from __future__ import annotations

import json
import math
import os
import platform
import resource
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["FRESHNESS_LIMIT", "Target", "machine_info", "peak_rss_mb", "pipe_table", "render_report", "render_table",
           "targets_for", "verdict", "write_json"]

FRESHNESS_LIMIT = 1.05  # seconds, p95
BUSIEST_30S_LIMIT = 1450  # presence calls in any 30 s (Graph allows 1,500 per app per tenant)
PEAK_RSS_LIMIT = 250.0  # MB
FIRST_SNAPSHOT_LIMIT = 10.0  # seconds from start to the first complete snapshot
WALL_VS_SDK = 50.0  # the job's median cycle wall is at least this many times shorter than msgraph-sdk's
CPU_VS_SDK = 100.0  # the job's median CPU per cycle is at least this many times lower than msgraph-sdk's
LAG_WRITEBACKS = 2.0  # Agent-list lag p95, in write-back intervals

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": lambda v, lim: v <= lim, "<": lambda v, lim: v < lim, "==": lambda v, lim: v == lim,
    ">=": lambda v, lim: v >= lim, ">": lambda v, lim: v > lim,
}


@dataclass(frozen=True)
class Target:
    """``value op limit`` (e.g. freshness p95 <= 1.05 s); None on either side makes it "n/a"."""

    name: str
    value: float | None
    op: str
    limit: float | None
    unit: str = ""
    key: str = ""  # stable identifier, e.g. "freshness_p95"
    limit_of: str = ""  # where a measured limit comes from, e.g. "bare httpx"

    def __post_init__(self) -> None:
        if self.op not in _OPS:
            raise ValueError(f"unknown comparison {self.op!r}")

    @property
    def passed(self) -> bool | None:
        if self.value is None or self.limit is None:
            return None
        return _OPS[self.op](float(self.value), float(self.limit))

    @property
    def status(self) -> str:
        return {True: "PASS", False: "FAIL", None: "n/a"}[self.passed]

    @property
    def text(self) -> str:
        """The target as a reader sees it: ``<= 1.05 s``, ``>= 50x``, ``<= 0.095 s (bare httpx)``."""
        limit = _fmt_limit(self.limit, self.unit)
        return f"{self.op} {limit}" + (f" ({self.limit_of})" if self.limit_of else "")

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "name": self.name, "value": _finite(self.value), "op": self.op,
                "limit": _finite(self.limit), "unit": self.unit, "limit_of": self.limit_of,
                "status": self.status}


def _num(section: dict[str, Any] | None, key: str) -> float | None:
    value = (section or {}).get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _ratio(a: float | None, b: float | None) -> float | None:
    """a / b, or None when either is missing or b is not positive."""
    if a is None or b is None or b <= 0:
        return None
    return a / b


def _finite(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def targets_for(figures: dict[str, Any]) -> list[Target]:
    """The benchmark's targets, in the issue's order, each evaluated on ``figures`` (missing -> n/a)."""
    job, bare = figures.get("job") or {}, figures.get("bare_httpx") or {}
    sdk, multi = figures.get("msgraph_sdk") or {}, figures.get("multi_tenant") or {}
    writeback = _num(job, "writeback_interval")
    tenants, each = multi.get("tenants"), multi.get("agents_each")
    multi_name = (f"{tenants} x {each:,} freshness p95" if isinstance(tenants, int) and isinstance(each, int)
                  else "10 x 3,000 freshness p95")
    return [
        Target("freshness p95", _num(job, "freshness_p95"), "<=", FRESHNESS_LIMIT, "s", "freshness_p95"),
        Target("429s", _num(job, "throttled"), "==", 0, "", "throttled"),
        Target("busiest 30 s, presence calls", _num(job, "busiest_30s"), "<=", BUSIEST_30S_LIMIT, "calls",
               "busiest_30s"),
        Target("CPU per cycle (median) vs bare httpx", _num(job, "cpu_per_cycle_median"), "<=",
               _num(bare, "cpu_per_cycle_median"), "s", "cpu_vs_bare", "bare httpx"),
        Target("peak RSS", _num(job, "peak_rss_mb"), "<=", PEAK_RSS_LIMIT, "MB", "peak_rss"),
        Target("first complete snapshot", _num(job, "first_complete_snapshot_s"), "<=", FIRST_SNAPSHOT_LIMIT, "s",
               "first_complete_snapshot"),
        Target("cycle wall (median), msgraph-sdk / job", _ratio(_num(sdk, "cycle_wall_p50"),
                                                                _num(job, "cycle_wall_p50")),
               ">=", WALL_VS_SDK, "x", "wall_vs_msgraph_sdk"),
        Target("CPU per cycle (median), msgraph-sdk / job", _ratio(_num(sdk, "cpu_per_cycle_median"),
                                                                   _num(job, "cpu_per_cycle_median")),
               ">=", CPU_VS_SDK, "x", "cpu_vs_msgraph_sdk"),
        Target(multi_name, _num(multi, "freshness_p95"), "<=", FRESHNESS_LIMIT, "s", "multi_tenant_freshness_p95"),
        Target("Agent-list lag p95", _num(job, "agent_list_lag_p95"), "<=",
               LAG_WRITEBACKS * writeback if writeback is not None else None, "s", "agent_list_lag_p95",
               f"{LAG_WRITEBACKS:g} write-back intervals"),
    ]


def verdict(targets: list[Target]) -> str:
    """FAIL if any target failed, PASS if some passed and none failed, n/a if none could be judged."""
    results = [t.passed for t in targets]
    if False in results:
        return "FAIL"
    return "PASS" if True in results else "n/a"


# --- table ---------------------------------------------------------------------------------------------------


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if not math.isfinite(value):
        return "inf" if value > 0 else "-"
    if unit == "x":
        return f"{value:.1f}x" if abs(value) >= 10 else f"{value:.2f}x"
    if unit in ("calls", ""):
        return f"{value:,.0f}" if float(value).is_integer() or abs(value) >= 100 else f"{value:,.1f}"
    if unit == "MB":
        return f"{value:.1f} MB"
    if unit == "s":
        if abs(value) >= 100:
            return f"{value:,.0f} s"
        return f"{value:.2f} s" if abs(value) >= 10 else f"{value:.3f} s"
    return f"{value:g} {unit}"


def _fmt_limit(value: float | None, unit: str) -> str:
    """A limit as written in the issue: ``1.05 s``, ``1,450``, ``50x``; a measured one like a figure."""
    if value is None:
        return "?"
    if unit == "x":
        return f"{value:g}x"
    if unit in ("calls", ""):
        return f"{value:,.0f}" if float(value).is_integer() else f"{value:g}"
    text = f"{value:g}"
    return f"{text} {unit}" if len(text) <= 6 else _fmt(value, unit)


# One row per figure: (label, key in job / bare_httpx / msgraph_sdk, unit, ratio (numerator, denominator), target key).
# A key may name another section with "section:key"; None leaves the cell empty.
_Row = tuple[str, str | None, str | None, str | None, str, tuple[str, str] | None, str | None]
_ROWS: list[_Row] = [
    ("freshness p50", "freshness_p50", None, None, "s", None, None),
    ("freshness p95", "freshness_p95", None, None, "s", None, "freshness_p95"),
    ("freshness p99", "freshness_p99", None, None, "s", None, None),
    ("cycle wall p50", "cycle_wall_p50", "cycle_wall_p50", "cycle_wall_p50", "s", ("msgraph_sdk", "job"),
     "wall_vs_msgraph_sdk"),
    ("cycle wall p95", "cycle_wall_p95", "cycle_wall_p95", "cycle_wall_p95", "s", None, None),
    ("CPU per cycle, median", "cpu_per_cycle_median", "cpu_per_cycle_median", None, "s", ("job", "bare_httpx"),
     "cpu_vs_bare"),
    ("CPU per cycle, median (sdk)", "cpu_per_cycle_median", None, "cpu_per_cycle_median", "s", ("msgraph_sdk", "job"),
     "cpu_vs_msgraph_sdk"),
    ("CPU per cycle, p95", "cpu_per_cycle_p95", "cpu_per_cycle_p95", "cpu_per_cycle_p95", "s", None, None),
    ("CPU of one tick, p50 (not amortised)", "cpu_per_tick_p50", "cpu_per_cycle_median", None, "s", None, None),
    ("CPU of one tick, p95 (not amortised)", "cpu_per_tick_p95", "cpu_per_cycle_p95", None, "s", None, None),
    ("presence calls per cycle", "presence_calls_per_cycle", "presence_calls_per_cycle",
     "presence_calls_per_cycle", "calls", None, None),
    ("busiest 30 s, presence calls", "busiest_30s", None, None, "calls", None, "busiest_30s"),
    ("429s", "throttled", "throttled", "throttled", "", None, "throttled"),
    ("first complete snapshot", "first_complete_snapshot_s", None, None, "s", None, "first_complete_snapshot"),
    ("peak RSS", "peak_rss_mb", None, None, "MB", None, "peak_rss"),
    ("Agent-list lag p50", "agent_list_lag_p50", None, None, "s", None, None),
    ("Agent-list lag p95", "agent_list_lag_p95", None, None, "s", None, "agent_list_lag_p95"),
    ("{multi} freshness p95", "multi_tenant:freshness_p95", None, None, "s", None, "multi_tenant_freshness_p95"),
]
_SHORT = {"job": "job", "bare_httpx": "bare", "msgraph_sdk": "sdk"}


def _cell(figures: dict[str, Any], section: str, key: str | None) -> Any:
    if key is None:
        return None
    if ":" in key:
        section, key = key.split(":", 1)
    return (figures.get(section) or {}).get(key)


def render_table(figures: dict[str, Any], targets: list[Target] | None = None) -> str:
    """A pipe table (reads in a terminal, renders in Markdown): figure, job, bare httpx, msgraph-sdk, ratio,
    target, result. Rows whose figures are all missing are left out."""
    targets = targets_for(figures) if targets is None else targets
    by_key = {t.key: t for t in targets}
    multi = figures.get("multi_tenant") or {}
    multi_label = (f"{multi['tenants']} x {multi['agents_each']:,}"
                   if isinstance(multi.get("tenants"), int) and isinstance(multi.get("agents_each"), int)
                   else "10 x 3,000")
    header = ["figure", "job", "bare httpx", "msgraph-sdk", "ratio", "target", "result"]
    rows: list[list[str]] = []
    for label, job_key, bare_key, sdk_key, unit, ratio, target_key in _ROWS:
        values = [_cell(figures, "job", job_key), _cell(figures, "bare_httpx", bare_key),
                  _cell(figures, "msgraph_sdk", sdk_key)]
        target = by_key.get(target_key) if target_key else None
        if all(v is None for v in values) and target is None:
            continue
        ratio_text = ""
        if ratio is not None:
            keys = {"job": job_key, "bare_httpx": bare_key, "msgraph_sdk": sdk_key}
            r = _ratio(_num(figures.get(ratio[0]), keys[ratio[0]] or ""), _num(figures.get(ratio[1]), keys[ratio[1]] or ""))
            ratio_text = f"{_SHORT[ratio[0]]}/{_SHORT[ratio[1]]} {_fmt(r, 'x')}" if r is not None else ""
        target_text = ""
        if target is not None:
            target_text = (f"{_SHORT.get(ratio[0], '')}/{_SHORT.get(ratio[1], '')} {target.text}"
                           if target.unit == "x" and ratio else target.text)
        rows.append([label.format(multi=multi_label), *(_fmt(v, unit) for v in values), ratio_text, target_text,
                     target.status if target is not None else ""])
    return pipe_table(header, rows, right={1, 2, 3, 4})


def pipe_table(header: list[str], rows: list[list[str]], right: set[int]) -> str:
    """A Markdown pipe table padded to read in a terminal; the columns in ``right`` are right-aligned."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.rjust(w) if i in right else c.ljust(w)
                                 for i, (c, w) in enumerate(zip(cells, widths, strict=True))) + " |"

    rule = "|" + "|".join(("-" * (w + 1) + ":") if i in right else ("-" * (w + 2))
                          for i, w in enumerate(widths)) + "|"
    return "\n".join([line(header), rule, *(line(r) for r in rows)])


def render_report(figures: dict[str, Any], targets: list[Target] | None = None, sections: tuple[str, ...] = ()) -> str:
    """Scenario and machine lines, the table, any further ``sections`` (tables of their own), and the verdict."""
    targets = targets_for(figures) if targets is None else targets
    sc, m = figures.get("scenario") or {}, figures.get("machine") or {}
    parts = []
    if sc:
        users, agents = sc.get("users"), sc.get("agents")
        who = (f"{users:,} users / {agents:,} agents" if isinstance(users, int) and isinstance(agents, int)
               else "")
        parts.append(f"scenario: {who}, {_fmt_limit(sc.get('seconds'), 's')} at --interval {sc.get('interval')}, "
                     f"latency {sc.get('latency') or 'none'}")
    if m:
        parts.append(f"machine: {m.get('cpu_count')} CPUs, Python {m.get('python')}, {m.get('platform')}")
    counts = {s: sum(t.status == s for t in targets) for s in ("PASS", "FAIL", "n/a")}
    parts += ["", render_table(figures, targets), ""]
    for section in sections:
        parts += [section, ""]
    parts += [f"verdict: {verdict(targets)} ({counts['PASS']} passed, {counts['FAIL']} failed, "
              f"{counts['n/a']} n/a)"]
    return "\n".join(parts)


def write_json(path: Path | str, figures: dict[str, Any], targets: list[Target] | None = None) -> Path:
    """Write ``{"figures", "targets", "verdict"}`` to ``path`` (atomically); returns the path."""
    targets = targets_for(figures) if targets is None else targets
    doc = {"figures": _clean(figures), "targets": [t.to_json() for t in targets], "verdict": verdict(targets)}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def _clean(value: Any) -> Any:
    """JSON-safe: non-finite floats become None, tuples lists, paths strings."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return _finite(value)


# --- measurements of this process ------------------------------------------------------------------------


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, MB (``ru_maxrss``: KB on Linux, bytes on macOS)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def machine_info() -> dict[str, Any]:
    """The ``machine`` section: CPU count, Python version, platform."""
    return {"cpu_count": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}
