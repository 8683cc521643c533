"""The report's figures, computed with pandas from the store: one frame per section of report.html."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import pandas as pd

from ..errors import UsageError
from ..models import CODES
from .data import (
    Reader,
    Scope,
    read_current,
    read_cycles,
    read_runs,
    read_transitions,
    read_validation,
    state_spans,
)
from .progress import NO_PROGRESS, Steps
from .timeline import hour_of_day_mix

__all__ = ["AGE_BUCKETS", "DEFAULT_DAYS", "ReportData", "summarise"]

DEFAULT_DAYS = 7  # the time-based sections cover the last 7 days unless --since says otherwise
STATUSES = ("ok", "fixed", "invalid")
AGE_BUCKETS = (("< 5 min", 5 * 60), ("5-15 min", 15 * 60), ("15-60 min", 3600), ("1-4 h", 4 * 3600),
               ("4-24 h", 86400), ("> 1 day", float("inf")))
TOP_FLAPPERS = 20


@dataclass
class ReportData:
    generated_at: datetime
    scope: Scope  # with since and until filled in
    accounts: list[str]
    findings: pd.DataFrame  # index: code; columns: severity, then one count column per account
    status: pd.DataFrame  # index: ok/fixed/invalid; one column per account
    bad_rows: pd.DataFrame  # every item that is not ok, with its suggestion
    runs: pd.DataFrame  # findings over time: account_id, at, items, ok, fixed, invalid, errors, warnings
    hour_mix: pd.DataFrame  # hours in each availability by hour of day (UTC)
    health: pd.DataFrame  # per account: freshness and cycle health
    ages: pd.DataFrame  # per account: agents by time in their current state
    volume: pd.DataFrame  # per account: history volume in the range
    flappers: pd.DataFrame  # agents with the most availability changes in the range


def _findings(validation: pd.DataFrame, accounts: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    codes = validation[["account_id", "codes"]].assign(code=validation["codes"].str.split(";")).explode("code")
    codes = codes[codes["code"].fillna("") != ""]
    order = list(CODES) + sorted(set(codes["code"]) - set(CODES))
    counts = pd.crosstab(codes["code"], codes["account_id"]).reindex(index=order, columns=accounts, fill_value=0)
    counts = counts[counts.sum(axis=1) > 0]
    counts.insert(0, "severity", [CODES.get(c, "") for c in counts.index])
    status = pd.crosstab(validation["status"], validation["account_id"]).reindex(
        index=list(STATUSES), columns=accounts, fill_value=0)
    return counts, status


def _runs(runs: pd.DataFrame) -> pd.DataFrame:
    if runs.empty:
        return runs.assign(errors=pd.Series(dtype=int), warnings=pd.Series(dtype=int))
    codes = runs["codes"].map(json.loads)
    errors = codes.map(lambda c: sum(n for k, n in c.items() if CODES.get(k) == "error"))
    return runs.assign(errors=errors, warnings=codes.map(lambda c: sum(c.values())) - errors)


def _health(cycles: pd.DataFrame, accounts: list[str], now: pd.Timestamp) -> pd.DataFrame:
    rows = []
    for acc in accounts:
        c = cycles[cycles["account_id"] == acc]
        good = c[c["error"].isna()]
        last = c.iloc[-1] if len(c) else None
        rows.append({
            "account": acc, "cycles": len(c), "failed": int(c["error"].notna().sum()),
            "last_cycle": last["started_at"] if last is not None else pd.NaT,
            "last_good_cycle": good["started_at"].iloc[-1] if len(good) else pd.NaT,
            "seconds_since_last": (now - last["started_at"]).total_seconds() if last is not None else None,
            "duration_p50": c["duration_s"].quantile(0.5) if len(c) else None,
            "duration_p95": c["duration_s"].quantile(0.95) if len(c) else None,
            "requests": int(c["requests"].sum()), "throttled": int(c["throttled"].sum()),
            "agents": int(last["agents"]) if last is not None else 0,
            "presences": int(last["presences"]) if last is not None else 0,
            "stale": int(last["stale"]) if last is not None else 0,
            "needs_human": bool(last["needs_human"]) if last is not None else False,
            "last_error": (last["error"] or "") if last is not None else "",
        })
    return pd.DataFrame(rows)


def _ages(current: pd.DataFrame, accounts: list[str], now: pd.Timestamp) -> pd.DataFrame:
    labels = [b for b, _ in AGE_BUCKETS]
    edges = [0.0] + [s for _, s in AGE_BUCKETS]
    age = (now - current["observed_at"]).dt.total_seconds().clip(lower=0)
    bucket = pd.cut(age, bins=edges, labels=labels, right=False, include_lowest=True)
    table = pd.crosstab(current["account_id"], bucket).reindex(index=accounts, columns=labels, fill_value=0)
    table.columns = pd.Index(labels, name=None)
    return table


def _volume(transitions: pd.DataFrame, accounts: list[str], days: float) -> pd.DataFrame:
    first = transitions["from_availability"] == ""
    table = pd.DataFrame({
        "changes": (~first).groupby(transitions["account_id"]).sum(),
        "first_observations": first.groupby(transitions["account_id"]).sum(),
        "agents": transitions.groupby("account_id")["user_id"].nunique(),
    }).reindex(accounts, fill_value=0).fillna(0).astype("int64")
    per_agent = table["changes"].astype(float) / table["agents"].where(table["agents"] > 0).astype(float)
    table["changes_per_agent_per_day"] = (per_agent / max(days, 1 / 24)).round(2).fillna(0.0)
    return table


def _flappers(transitions: pd.DataFrame) -> pd.DataFrame:
    changes = transitions[transitions["from_availability"] != ""]
    if changes.empty:
        return pd.DataFrame(columns=["account_id", "upn", "changes", "to_states", "last_change"])
    g = changes.groupby(["account_id", "user_id"])
    table = pd.DataFrame({"upn": g["upn"].last(), "changes": g.size(),
                          "to_states": g["to_availability"].nunique(), "last_change": g["changed_at"].max()})
    table = table.reset_index().sort_values(["changes", "last_change"], ascending=[False, False], kind="stable")
    return table.head(TOP_FLAPPERS)[["account_id", "upn", "changes", "to_states", "last_change"]]


def summarise(conn: Reader, scope: Scope, progress: Steps = NO_PROGRESS) -> ReportData:
    """Every section's frame. Without --since the time-based sections cover the last DEFAULT_DAYS days."""
    now = datetime.now(UTC)
    end = scope.until or now
    scope = replace(scope, since=scope.since or end - timedelta(days=DEFAULT_DAYS), until=end)
    progress.step("validation")
    validation = read_validation(conn, scope)
    progress.step("cycles")
    cycles = read_cycles(conn, scope)
    current = read_current(conn, scope)
    known = set(validation["account_id"]) | set(cycles["account_id"]) | set(current["account_id"])
    if scope.accounts:
        missing = [a for a in scope.accounts if a not in known]
        if missing and len(missing) == len(scope.accounts):
            raise UsageError(f"--account {', '.join(missing)}: the store has nothing for it.",
                             hint="Use an Account Id that has run (see validation.csv or presence.csv).")
    accounts = sorted(known if not scope.accounts else set(scope.accounts) & known)
    findings, status = _findings(validation, accounts)
    bad = validation[validation["status"] != "ok"][
        ["account_id", "item_id", "raw_upn", "status", "codes", "severity", "suggestion"]]
    progress.step("findings over time")
    runs = _runs(read_runs(conn, scope))
    progress.step("presence history")
    with_baseline = read_transitions(conn, scope, baseline=True)
    spans = state_spans(conn, scope, with_baseline)
    transitions = with_baseline[with_baseline["changed_at"] >= pd.Timestamp(scope.since)]
    del with_baseline
    progress.step("availability by hour")
    mix = hour_of_day_mix(spans)
    ts_now = pd.Timestamp(now)
    days = (end - scope.since).total_seconds() / 86400 if scope.since else 1.0
    return ReportData(
        generated_at=now, scope=scope, accounts=accounts, findings=findings, status=status,
        bad_rows=bad.reset_index(drop=True), runs=runs, hour_mix=mix, health=_health(cycles, accounts, ts_now),
        ages=_ages(current, accounts, ts_now), volume=_volume(transitions, accounts, days),
        flappers=_flappers(transitions),
    )
