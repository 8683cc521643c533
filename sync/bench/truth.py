"""The job's presence history against the local tenant's ground truth: lost, invented and duplicate transitions.

Times. The job stamps wall time (a history row's ``changed_at`` is when the tick that saw the new state got
its answer). The tenant's presence clock runs ``speed`` times faster from an anchor taken when the soak or
crash program set it: ``presence = p0 + (wall - w0) * speed`` (``ClockMap``). Every ground-truth time is mapped
back to wall time before it is compared, so all tolerances below are in wall seconds.

Rules (``interval`` is the job's ``--interval``, ``tol = interval + latency``, ``latency`` 0.5 s by default: the
time a read may take on a loaded machine; ``eps`` 0.05 s for the two clock reads that anchor the mapping):

- The tenant's log is turned into *segments* per user: a pair (availability, activity) held from ``a`` to ``b``;
  consecutive log entries with the same pair (a status-message change) are one segment.
- The job was *up* for an account over the spans the caller gives (from the first good read after a start to
  the moment it was stopped or killed); a user is visible from the job's first record of that user on.
- A segment *counts* when ``b - a >= 2 * interval`` and its overlap with one up span (from the user's first
  record on) is at least ``2 * interval`` long: a shorter overlap may fall between two reads or on a kill, so
  a state the job could not see is never called lost.
- A counted segment is *lost* when the job's history never claims its pair anywhere in ``[a - eps, b + tol]``
  (the claim at an instant is the ``to`` pair of the last row at or before it).
- A lost segment is *unreadable* instead when it lies wholly inside a window in which the tenant forbade presence
  reads (``pauses``: each presence 429 or 503 the tenant's fault switches sent, ``[sent, sent + Retry-After]``, merged
  when they touch, widened by one ``interval`` before, the last read before the 429, and by ``eps`` + 0.2 s
  after, the first read after it): a client that honours Retry-After and reads every ``interval`` could not have
  seen it either. A 429 for a used-up budget is the job's own doing and excuses nothing.
- A row that is not a first observation (``from`` empty) is *invented* when the tenant never held its ``to``
  pair anywhere in ``[changed_at - tol, changed_at + eps]``.
- *Duplicates*: a user's row whose ``to`` pair equals the previous row's ``to`` pair (ordered by time, then
  insertion), and rows identical in every column to an earlier row (counted once each).
"""

from __future__ import annotations

import bisect
import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

__all__ = ["ClockMap", "Comparison", "Row", "Segment", "compare", "duplicates", "load_rows", "parse_time",
           "pause_windows", "read_only", "segments", "unmatched"]

Pair = tuple[str, str]


def parse_time(value: str) -> datetime:
    """ISO 8601 (``Z`` or an offset, or naive taken as UTC) -> an aware UTC datetime."""
    when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


@dataclass(frozen=True)
class ClockMap:
    """Presence clock <-> wall clock: ``presence = p0 + (wall - w0) * speed``."""

    p0: datetime
    w0: float
    speed: float

    def to_presence(self, wall: float) -> datetime:
        return self.p0 + timedelta(seconds=(wall - self.w0) * self.speed)

    def to_wall(self, presence: datetime) -> float:
        return self.w0 + (presence - self.p0).total_seconds() / self.speed


@dataclass(frozen=True)
class Row:
    """One history row of the job (``transitions`` table), ``at`` in wall seconds."""

    account: str
    user_id: str
    frm: Pair
    to: Pair
    at: float
    upn: str = ""

    @property
    def first(self) -> bool:
        return self.frm == ("", "")


@dataclass(frozen=True)
class Segment:
    """One pair a user held over ``[a, b)`` wall seconds."""

    pair: Pair
    a: float
    b: float


@dataclass
class Comparison:
    counted: int = 0  # segments long enough, and seen long enough while the job was up
    lost: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)  # lost, but inside the tenant's Retry-After pauses
    invented: list[str] = field(default_factory=list)
    rows: int = 0  # history rows that are transitions (not first observations)
    truth_changes: int = 0

    def to_json(self, sample: int = 20) -> dict[str, Any]:
        return {"segments_counted": self.counted, "lost": len(self.lost), "unreadable": len(self.unreadable),
                "invented": len(self.invented), "history_transitions": self.rows,
                "tenant_transitions": self.truth_changes, "lost_sample": self.lost[:sample],
                "unreadable_sample": self.unreadable[:sample], "invented_sample": self.invented[:sample]}


def read_only(db: Path, sql: str) -> list[Any]:
    """The rows of one query on the store, opened read-only (the job may still be writing it)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def load_rows(db: Path) -> list[Row]:
    """Every row of the store's ``transitions`` table, in insertion order."""
    got = read_only(db, "SELECT account_id, upn, user_id, from_availability, from_activity, to_availability,"
                        " to_activity, changed_at FROM transitions ORDER BY rowid")
    return [Row(r[0], r[2], (r[3], r[4]), (r[5], r[6]), parse_time(r[7]).timestamp(), r[1]) for r in got]


def segments(initial: Pair, changes: Iterable[tuple[float, Pair]], start: float, end: float) -> list[Segment]:
    """A user's segments over ``[start, end)`` from the pair held at ``start`` and the (wall time, new pair)
    changes after it, oldest first; equal consecutive pairs merge."""
    out: list[Segment] = []
    pair, since = initial, start
    for at, to in changes:
        if to == pair or at < start:
            continue
        if at >= end:
            break
        out.append(Segment(pair, since, at))
        pair, since = to, at
    out.append(Segment(pair, since, end))
    return out


def _claims(rows: Sequence[Row]) -> tuple[list[float], list[Pair]]:
    ordered = sorted(rows, key=lambda r: r.at)
    return [r.at for r in ordered], [r.to for r in ordered]


def _claimed_within(times: list[float], pairs: list[Pair], pair: Pair, lo: float, hi: float) -> bool:
    """Whether the job's history claims ``pair`` at some instant of [lo, hi]."""
    i = bisect.bisect_right(times, lo) - 1
    if i >= 0 and pairs[i] == pair:
        return True
    j = bisect.bisect_right(times, hi)
    return pair in pairs[max(i + 1, 0):j]


def _held_within(segs: Sequence[Segment], pair: Pair, lo: float, hi: float) -> bool:
    return any(s.pair == pair and s.a <= hi and s.b >= lo for s in segs)


def pause_windows(pauses: Iterable[Sequence[float]], interval: float, eps: float = 0.05) -> list[tuple[float, float]]:
    """The spans no Retry-After-honouring client reading every ``interval`` could read in: each presence 429's
    ``[sent, until]`` merged with those it touches, from one ``interval`` before (the last read before the
    429) to ``eps`` + 0.2 s after (the first read after it). Sorted, not overlapping."""
    out: list[tuple[float, float]] = []
    for a, b in sorted((float(p[0]), float(p[1])) for p in pauses):
        lo, hi = a - interval, b + eps + 0.2
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def _inside(windows: Sequence[tuple[float, float]], a: float, b: float) -> bool:
    i = bisect.bisect_right(windows, (a, float("inf"))) - 1
    return i >= 0 and windows[i][0] <= a and b <= windows[i][1]


def compare(truth: Mapping[str, Sequence[Segment]], rows: Sequence[Row], up: Sequence[tuple[float, float]], *,
            interval: float, latency: float = 0.5, eps: float = 0.05, label: str = "",
            pauses: Iterable[Sequence[float]] = ()) -> Comparison:
    """One account: ``truth`` segments per user id, the account's history ``rows``, the spans the job was up,
    the tenant's presence Retry-After windows (``pauses``, wall seconds)."""
    tol = interval + latency
    windows = pause_windows(pauses, interval, eps)
    res = Comparison()
    by_user: dict[str, list[Row]] = defaultdict(list)
    for r in rows:
        by_user[r.user_id].append(r)
    for uid, segs in truth.items():
        res.truth_changes += max(0, len(segs) - 1)
        mine = by_user.get(uid, [])
        times, pairs = _claims(mine)
        if not times:
            continue  # never read: not an agent the job could collect (or never up); nothing to compare
        visible = times[0]
        for s in segs:
            if s.b - s.a < 2 * interval:
                continue
            overlap = max((min(s.b, hi) - max(s.a, lo, visible) for lo, hi in up), default=0.0)
            if overlap < 2 * interval:
                continue
            res.counted += 1
            if not _claimed_within(times, pairs, s.pair, s.a - eps, s.b + tol):
                where = res.unreadable if _inside(windows, s.a, s.b) else res.lost
                where.append(f"{label}{uid}: {s.pair[0]}/{s.pair[1]} held {s.b - s.a:.1f} s from "
                             f"{_iso(s.a)}, never in the history")
        for r in mine:
            if r.first:
                continue
            res.rows += 1
            if not _held_within(segs, r.to, r.at - tol, r.at + eps):
                res.invented.append(f"{label}{uid}: {r.frm[0]}/{r.frm[1]} -> {r.to[0]}/{r.to[1]} at {_iso(r.at)}, "
                                    "the tenant never held it then")
    return res


def duplicates(rows: Iterable[Row]) -> dict[str, int]:
    """Consecutive transitions of one user to the same pair, and rows identical to an earlier one."""
    seen: set[tuple[str, str, Pair, Pair, float]] = set()
    identical = 0
    by_user: dict[tuple[str, str], list[tuple[float, int, Row]]] = defaultdict(list)
    for n, r in enumerate(rows):
        key = (r.account, r.user_id, r.frm, r.to, r.at)
        if key in seen:
            identical += 1
        seen.add(key)
        by_user[(r.account, r.user_id)].append((r.at, n, r))
    same = 0
    for entries in by_user.values():
        entries.sort(key=lambda e: (e[0], e[1]))
        same += sum(1 for (_, _, a), (_, _, b) in zip(entries, entries[1:], strict=False) if a.to == b.to)
    return {"same_state": same, "identical": identical}


def unmatched(store: Iterable[Row], csv_rows: Iterable[Row], slack: float = 0.002) -> dict[str, int]:
    """History rows in the store that presence_history.csv lacks, and the other way round (times to the ms)."""
    left: dict[tuple[str, str, Pair, Pair], list[float]] = defaultdict(list)
    for r in store:
        left[(r.account, r.user_id, r.frm, r.to)].append(r.at)
    extra = 0
    for r in csv_rows:
        times = left.get((r.account, r.user_id, r.frm, r.to), [])
        hit = next((i for i, t in enumerate(times) if abs(t - r.at) <= slack), None)
        if hit is None:
            extra += 1
        else:
            times.pop(hit)
    return {"missing_from_csv": sum(len(v) for v in left.values()), "not_in_store": extra}


def _iso(wall: float) -> str:
    return datetime.fromtimestamp(wall, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
