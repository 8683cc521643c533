"""Time spent in each state, from a history of transitions (pure pandas; no I/O).

A state lasts from its transition until the agent's next transition, or until the end of what is known: the end
of the range asked for, or the account's last recorded cycle when that is earlier (the job saw nothing after it).
The state an agent was in when the range starts is the last transition before it (the *baseline*); a state
before an agent's first observation is unknown and counts nowhere. Periods (days, hours) are cut in UTC.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import numpy as np
import pandas as pd

__all__ = ["AVAILABILITIES", "daily_summary", "hour_of_day_mix", "intervals", "split_periods"]

# Graph's availability values, in the order reports show them; others found in the data follow, sorted.
AVAILABILITIES = ("Available", "AvailableIdle", "Busy", "BusyIdle", "DoNotDisturb", "BeRightBack", "Away",
                  "Offline", "PresenceUnknown")
_KEYS = ["account_id", "user_id"]


def _utc(value: datetime | pd.Timestamp) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def intervals(transitions: pd.DataFrame, start: datetime | None, end: datetime,
              known_until: Mapping[str, datetime] | None = None) -> pd.DataFrame:
    """One row per stretch of one state: account_id, upn, user_id, availability, activity, start, end.

    ``transitions`` has account_id, upn, user_id, to_availability, to_activity and changed_at (UTC datetimes),
    baseline rows (changed_at before ``start``) included. Stretches are clipped to [start, end) and, per account,
    to ``known_until``; empty stretches are dropped.
    """
    cols = ["account_id", "upn", "user_id", "availability", "activity", "start", "end"]
    if transitions.empty:
        return pd.DataFrame({c: pd.Series(dtype="datetime64[ns, UTC]" if c in ("start", "end") else object)
                             for c in cols})
    t = transitions.sort_values([*_KEYS, "changed_at"], kind="stable").reset_index(drop=True)
    changed = pd.to_datetime(t["changed_at"], utc=True)
    stop = _utc(end)
    nxt = changed.groupby([t["account_id"], t["user_id"]], sort=False).shift(-1)
    limit = pd.Series(stop, index=t.index)
    if known_until:
        known = t["account_id"].map({a: _utc(v) for a, v in known_until.items()})
        limit = limit.where(known.isna() | (known >= stop), known)
        limit = pd.to_datetime(limit, utc=True)
    ends = nxt.fillna(limit)
    ends = ends.where(ends <= limit, limit)
    starts = changed if start is None else changed.where(changed >= _utc(start), _utc(start))
    out = pd.DataFrame({"account_id": t["account_id"], "upn": t["upn"], "user_id": t["user_id"],
                        "availability": t["to_availability"], "activity": t["to_activity"],
                        "start": starts, "end": ends})
    return out[out["end"] > out["start"]].reset_index(drop=True)


def split_periods(spans: pd.DataFrame, freq: str) -> pd.DataFrame:
    """``spans`` (with start and end) cut at every ``freq`` boundary ("D", "h") in UTC; adds ``period`` (the
    boundary each piece starts after) and ``seconds``. Vectorised: no Python loop per row."""
    if spans.empty:
        return spans.assign(period=pd.Series(dtype="datetime64[ns, UTC]"), seconds=pd.Series(dtype=float))
    step = pd.Timedelta(1, unit=freq)
    first = spans["start"].dt.floor(freq)
    last = (spans["end"] - pd.Timedelta(1, unit="ns")).dt.floor(freq)
    count = ((last - first) // step).astype(np.int64) + 1
    rows = spans.loc[spans.index.repeat(count)].copy()
    counts = count.to_numpy()
    k = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)  # 0..n-1 within each span
    period = first.loc[rows.index] + pd.to_timedelta(k * step.value, unit="ns")
    rows["period"] = period.to_numpy()
    piece_start = rows["start"].where(rows["start"] > rows["period"], rows["period"])
    period_end = rows["period"] + step
    piece_end = rows["end"].where(rows["end"] < period_end, period_end)
    rows["start"], rows["end"] = piece_start, piece_end
    rows["seconds"] = (piece_end - piece_start).dt.total_seconds()
    return rows.reset_index(drop=True)


def _ordered(names: Sequence[str]) -> list[str]:
    known = [a for a in AVAILABILITIES if a in names]
    return known + sorted(set(names) - set(AVAILABILITIES))


def daily_summary(spans: pd.DataFrame) -> pd.DataFrame:
    """Seconds per availability per agent per UTC day: account_id, upn, user_id, date_utc, one column per
    availability seen (Graph's order), observed_s (their sum). Whole seconds."""
    pieces = split_periods(spans, "D")
    if pieces.empty:
        return pd.DataFrame(columns=["account_id", "upn", "user_id", "date_utc", "observed_s"])
    pieces["date_utc"] = np.datetime_as_string(pieces["period"].dt.tz_convert(None).to_numpy(), unit="D")
    table = pieces.pivot_table(index=["account_id", "user_id", "date_utc"], columns="availability",
                               values="seconds", aggfunc="sum", fill_value=0.0)
    table = table[_ordered(list(table.columns))].round().astype(np.int64)
    table.columns.name = None
    table["observed_s"] = table.sum(axis=1)
    upn = pieces.groupby(_KEYS, sort=False)["upn"].last()  # the UPN the agent had last in the range
    table = table.reset_index()
    table.insert(1, "upn", pd.MultiIndex.from_frame(table[_KEYS]).map(upn))
    return table.sort_values(["account_id", "upn", "date_utc"], kind="stable").reset_index(drop=True)


def _seconds_in_hour_before(t: np.ndarray, hour: int) -> np.ndarray:
    """Seconds of hour-of-day ``hour`` (UTC) between the epoch and ``t`` (seconds since the epoch)."""
    days = np.floor(t / 86400.0)
    return days * 3600.0 + np.clip(t - days * 86400.0 - hour * 3600.0, 0.0, 3600.0)


def hour_of_day_mix(spans: pd.DataFrame) -> pd.DataFrame:
    """Hours spent in each availability by hour of the day (UTC), all agents together: index 0-23, one column
    per availability (Graph's order). Counted per span in closed form (no cutting into pieces), so a week of
    history of 30,000 agents costs 24 vector passes."""
    hours = pd.RangeIndex(24, name="hour")
    if spans.empty:
        return pd.DataFrame(index=hours)
    start = spans["start"].astype("int64").to_numpy() / 1e9
    end = spans["end"].astype("int64").to_numpy() / 1e9
    codes, names = pd.factorize(spans["availability"])
    table = pd.DataFrame(
        [np.bincount(codes, _seconds_in_hour_before(end, h) - _seconds_in_hour_before(start, h), len(names))
         for h in range(24)], index=hours, columns=[str(n) for n in names])
    return table[_ordered(list(table.columns))] / 3600.0
