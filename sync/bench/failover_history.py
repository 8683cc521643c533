"""The failover program's history figures: the store and the whole-folder presence_history.csv against each
other (duplicates, rows not in both) and against the tenant's presence log (lost and invented transitions,
sync.bench.truth), outside the windows in which no replica read an account."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .truth import ClockMap, Row, compare, duplicates, parse_time, segments, unmatched

__all__ = ["history_figures", "transitions"]


def history_figures(url: str, csv_path: Path) -> tuple[dict[str, Any], list[Row]]:
    """Duplicates in the store and in the whole-folder presence_history.csv, and the rows not in both."""
    import csv

    import psycopg

    with psycopg.connect(url) as conn:
        got = conn.execute("SELECT account_id, upn, user_id, from_availability, from_activity, to_availability,"
                           " to_activity, changed_at FROM transitions ORDER BY seq").fetchall()
    stored = [Row(r[0], r[2], (r[3], r[4]), (r[5], r[6]), parse_time(r[7]).timestamp(), r[1]) for r in got]
    with csv_path.open(newline="", encoding="utf-8-sig") as fh:
        rows = [Row(r["account_id"], r["user_id"], (r["from_availability"], r["from_activity"]),
                    (r["to_availability"], r["to_activity"]), parse_time(r["changed_at_utc"]).timestamp(), r["upn"])
                for r in csv.DictReader(fh)]
    return {"store_rows": len(stored), "csv_rows": len(rows), "store_duplicates": duplicates(stored),
            "csv_duplicates": duplicates(rows), "unmatched": unmatched(stored, rows)}, stored


def transitions(tenant: Any, clock: ClockMap, stored: list[Row], ticks: dict[str, list[tuple[float, str]]],
                names: list[str], start: float, end: float) -> dict[str, Any]:
    """Lost and invented transitions against the tenant's presence log (sync.bench.truth), outside the windows in
    which no replica read an account: an account is "up" over each run of presence reads less than 2 intervals
    apart, whichever replica made them, so a state that began and ended inside a takeover is not counted."""
    from urllib.parse import quote

    def iso(wall: float) -> str:
        return quote(clock.to_presence(wall).isoformat().replace("+00:00", "Z"))

    lost = invented = counted = 0
    samples: list[str] = []
    for acc in names:
        mine = [r for r in stored if r.account == acc]
        ids = {r.user_id for r in mine}
        at = tenant.control("GET", f"/_emulator/presence?tenant={acc}&at={iso(start)}")["value"]
        initial = {p["id"]: (p["availability"], p["activity"]) for p in at if p["id"] in ids}
        log = tenant.control("GET", f"/_emulator/presence-log?tenant={acc}&since={iso(start)}&until={iso(end)}")
        changes: dict[str, list[tuple[float, tuple[str, str]]]] = {}
        for t in log["value"]:
            if t["user_id"] in ids:
                changes.setdefault(t["user_id"], []).append(
                    (clock.to_wall(parse_time(t["at"])), (t["to"]["availability"], t["to"]["activity"])))
        truth = {uid: segments(initial[uid], changes.get(uid, []), start, end) for uid in ids if uid in initial}
        reads = sorted(t for each in ticks.values() for t, a in each if a == acc)
        up: list[tuple[float, float]] = []
        for t in reads:
            if up and t - up[-1][1] <= 2.0:
                up[-1] = (up[-1][0], t)
            else:
                up.append((t, t))
        res = compare(truth, mine, up, interval=1.0, label=f"{acc} ")
        lost, invented, counted = lost + len(res.lost), invented + len(res.invented), counted + res.counted
        samples += (res.lost + res.invented)[:5]
    return {"segments_counted": counted, "lost": lost, "invented": invented, "sample": samples[:20]}
