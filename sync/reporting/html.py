"""report.html from ReportData: one self-contained page (inline CSS and SVG, no script, no external resource;
a Content-Security-Policy forbids loading anything). Every text is HTML-escaped: UPN cells are user input."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import datetime
from html import escape
from typing import Any

import pandas as pd

from .charts import AVAILABILITY_COLORS, line_chart, stacked_bars
from .summary import ReportData

__all__ = ["render"]

_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px auto;max-width:1100px;
color:#201f1e;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #e1dfdd;padding-bottom:4px}
p.meta{color:#605e5c;margin:0 0 12px}
table{border-collapse:collapse;margin:6px 0 12px;font-size:13px}
th,td{border:1px solid #e1dfdd;padding:3px 8px;text-align:left;vertical-align:top}td{white-space:nowrap}
th{background:#f3f2f1}td.n{text-align:right;font-variant-numeric:tabular-nums}
tr.total td{font-weight:600;background:#faf9f8}
td.raw{font-family:ui-monospace,Consolas,monospace;white-space:pre-wrap;word-break:break-all;max-width:360px}
.invalid{color:#a4262c;font-weight:600}.fixed{color:#8a6d00}.ok{color:#107c10}
.empty{color:#605e5c;font-style:italic}
svg.chart{width:100%;max-width:760px;height:auto;font:11px sans-serif}
svg .grid{stroke:#edebe9}svg text{fill:#323130}svg .unit{font-weight:600}
"""


def _fmt(value: Any) -> str:
    if value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, pd.Timestamp | datetime):
        return f"{value:%Y-%m-%d %H:%M:%S} UTC"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.3f}".rstrip("0").rstrip(".")
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _cell(value: Any, attrs: str = "", cls: str = "") -> str:
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    classes = " ".join(c for c in (cls, "n" if numeric else "") if c)
    return f"<td{f' class={chr(34)}{classes}{chr(34)}' if classes else ''}{attrs}>{escape(_fmt(value))}</td>"


def _table(headers: Sequence[str], rows: Iterable[str], empty: str, attrs: str = "") -> str:
    body = "".join(rows)
    if not body:
        return f'<p class="empty">{escape(empty)}</p>'
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    return f"<table{attrs}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _attr(name: str, value: str) -> str:
    return f' {name}="{escape(value, quote=True)}"'


def _findings(d: ReportData) -> str:
    rows = []
    for code, row in d.findings.iterrows():
        cells = "".join(_cell(int(row[a]), _attr("data-account", a) + _attr("data-code", str(code)))
                        for a in d.accounts)
        rows.append(f"<tr><td>{escape(str(code))}</td><td>{escape(str(row['severity']))}</td>{cells}</tr>")
    for status, row in d.status.iterrows():
        cells = "".join(_cell(int(row[a]), _attr("data-account", a) + _attr("data-status", str(status)))
                        for a in d.accounts)
        rows.append(f'<tr class="total"><td>rows {escape(str(status))}</td><td></td>{cells}</tr>')
    return _table(["code", "severity", *d.accounts], rows, "No Agent-list verdicts in the store.",
                  ' id="findings"')


def _bad_rows(d: ReportData) -> str:
    rows = [
        f'<tr class="bad-row"{_attr("data-account", r.account_id)}>{_cell(r.account_id)}{_cell(int(r.item_id))}'
        f'{_cell(r.raw_upn, cls="raw")}{_cell(r.status, cls=r.status)}{_cell(r.codes.replace(";", ", "))}'
        f"{_cell(r.severity)}{_cell(r.suggestion, cls='raw')}</tr>"
        for r in d.bad_rows.itertuples(index=False)
    ]
    return _table(["account", "item", "cell as typed", "status", "codes", "severity", "suggestion"], rows,
                  "Every Agent-list cell is a valid UPN.", ' id="bad-rows"')


def _over_time(d: ReportData) -> str:
    runs = d.runs
    lines = {f"{a} invalid": list(zip(g["at"], g["invalid"].astype(float), strict=True))
             for a, g in runs.groupby("account_id")}
    lines |= {f"{a} fixed": list(zip(g["at"], g["fixed"].astype(float), strict=True))
              for a, g in runs.groupby("account_id")}
    chart = line_chart("Agent-list items invalid and fixed over time", dict(sorted(lines.items())), "items")
    rows = [f"<tr>{_cell(r.at)}{_cell(r.account_id)}{_cell(int(r.items))}{_cell(int(r.ok))}{_cell(int(r.fixed))}"
            f"{_cell(int(r.invalid))}{_cell(int(r.errors))}{_cell(int(r.warnings))}</tr>"
            for r in runs.iloc[::-1].head(50).itertuples(index=False)]
    note = "<p class=\"meta\">The latest 50 changes of the verdicts, newest first.</p>" if len(runs) > 50 else ""
    return chart + note + _table(["validated", "account", "items", "ok", "fixed", "invalid", "errors", "warnings"],
                                 rows, "The verdicts did not change in this range.", ' id="runs"')


def _hour_mix(d: ReportData) -> str:
    mix = d.hour_mix
    if mix.empty or not len(mix.columns):
        return '<p class="empty">No presence history in this range.</p>'
    series = {str(c): [float(v) for v in mix[c]] for c in mix.columns}
    return stacked_bars("Agent-hours in each availability by hour of day (UTC)",
                        [f"{h:02d}" for h in mix.index], series, AVAILABILITY_COLORS, "agent-hours")


def _health(d: ReportData) -> str:
    cols = ["account", "cycles", "failed", "last_cycle", "seconds_since_last", "last_good_cycle", "duration_p50",
            "duration_p95", "requests", "throttled", "agents", "presences", "stale", "needs_human", "last_error"]
    heads = ["account", "cycles", "failed", "last cycle", "seconds since", "last good cycle", "cycle p50 s",
             "cycle p95 s", "requests", "429s", "agents", "presences", "stale", "needs a human", "last error"]
    rows = ["<tr>" + "".join(_cell(_py(r[c]), _attr("data-field", c)) for c in cols) + "</tr>"
            for r in d.health.to_dict("records")]
    health = _table(heads, rows, "No cycles recorded in this range.", ' id="health"')
    age_rows = [f"<tr>{_cell(a)}" + "".join(_cell(int(n)) for n in d.ages.loc[a]) + "</tr>" for a in d.ages.index]
    ages = _table(["account", *map(str, d.ages.columns)], age_rows, "No presence snapshot yet.", ' id="ages"')
    vol_rows = [f"<tr>{_cell(a)}" + "".join(_cell(_py(v)) for v in d.volume.loc[a]) + "</tr>"
                for a in d.volume.index]
    volume = _table(["account", "availability or activity changes", "first observations", "agents",
                     "changes per agent per day"], vol_rows, "No presence history in this range.", ' id="volume"')
    return (health + "<h3>Agents by time in their current presence state</h3>" + ages
            + "<h3>History volume in this range</h3>" + volume)


def _py(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _flappers(d: ReportData) -> str:
    rows = [f"<tr>{_cell(r.account_id)}{_cell(r.upn, cls='raw')}{_cell(int(r.changes))}{_cell(int(r.to_states))}"
            f"{_cell(r.last_change)}</tr>" for r in d.flappers.itertuples(index=False)]
    return _table(["account", "agent", "changes", "states", "last change"], rows,
                  "No availability or activity changes in this range.", ' id="flappers"')


def render(d: ReportData) -> str:
    """The whole page."""
    s = d.scope
    scope = (f"{_fmt(s.since)} to {_fmt(s.until)}; accounts: {', '.join(d.accounts) or 'none'}"
             + (f"; agents: {', '.join(s.agents)}" if s.agents else ""))
    sections = [
        ("UPN findings by code and account", _findings(d)),
        (f"Agent-list items that are not ok ({len(d.bad_rows):,})", _bad_rows(d)),
        ("Findings over time", _over_time(d)),
        ("Availability by hour of day (UTC)", _hour_mix(d)),
        ("Freshness and cycle health", _health(d)),
        ("Agents whose presence changes most", _flappers(d)),
    ]
    body = "".join(f"<section><h2>{escape(t)}</h2>{html}</section>" for t, html in sections)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>presence-sync data-quality report</title><style>{_CSS}</style></head><body>"
            f"<h1>presence-sync data-quality report</h1><p class=\"meta\">Generated {escape(_fmt(d.generated_at))}. "
            f"Time-based sections cover {escape(scope)}. Findings and rows are the latest verdicts.</p>"
            f"{body}</body></html>\n")
