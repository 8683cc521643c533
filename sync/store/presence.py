"""The presence snapshot and its diff: the hot path of every cycle.

The `current` table holds each user's last observed state; a copy lives in memory per account (loaded once),
so a cycle of 30,000 presences is compared in a few C-level passes (`map`/`compress`, no Python loop per
agent) and only the users whose state changed are touched by Python and written, in one transaction.

Rules (they decide what the history means):
- A row changes when availability, activity, status message or out-of-office changed. A *transition*
  (a `Change`, one row of `transitions` and of presence_history.csv) is recorded only when availability or
  activity changed. `sequence_number` is stored with a written row but never makes a row change by itself.
- The first observation of a user IS recorded, as a transition from "" to the first state
  (`from_availability == ""`). It gives the history a baseline: the state of every agent at any instant is
  the last transition at or before it (`snapshots(at=...)`). Consumers that want real changes only (for
  example a comparison with the tenant's own change log) skip rows whose `from_availability` is "".
- A stale `Presence` (its chunk failed; values are the last known ones) never changes anything.
- `current.observed_at` is when the stored state was first seen (its "since"), not the last cycle's time:
  rewriting it every cycle would mean 30,000 writes per second for nothing.
- A user listed twice (the same person on two Agent list items) counts once.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from itertools import compress, filterfalse
from operator import attrgetter, itemgetter, ne
from types import MappingProxyType

from sync.models import Change, CycleResult, Presence
from sync.store._db import dt, ts
from sync.store.backend import TableBase

__all__ = ["PresenceTables", "StateKey"]

# (user_id, availability, activity, status_message, out_of_office): what "the same state" means.
StateKey = tuple[str, str, str, str, bool]
_KEY = attrgetter("user_id", "availability", "activity", "status_message", "out_of_office")
_STALE = attrgetter("stale")
_FIRST = itemgetter(0)

_UPSERT_CURRENT = (
    "INSERT INTO current (account_id, user_id, upn, availability, activity, status_message, out_of_office,"
    " sequence_number, observed_at) VALUES (?,?,?,?,?,?,?,?,?)"
    " ON CONFLICT (account_id, user_id) DO UPDATE SET upn=excluded.upn, availability=excluded.availability,"
    " activity=excluded.activity, status_message=excluded.status_message,"
    " out_of_office=excluded.out_of_office, sequence_number=excluded.sequence_number,"
    " observed_at=excluded.observed_at"
)
_INSERT_TRANSITION = (
    "INSERT INTO transitions (account_id, upn, user_id, from_availability, from_activity, to_availability,"
    " to_activity, changed_at) VALUES (?,?,?,?,?,?,?,?)"
)
_CYCLE_COLUMNS = (
    "account_id", "started_at", "agents", "valid", "resolved", "presences", "changes", "requests",
    "throttled", "stale", "written_back", "duration_s", "error", "needs_human",
)


def _where(accounts: Sequence[str] | None, since: datetime | None, until: datetime | None,
           column: str) -> tuple[str, list[object]]:
    """A WHERE clause for account and half-open time-range filters ([since, until))."""
    clauses: list[str] = []
    params: list[object] = []
    if accounts is not None:
        clauses.append(f"account_id IN ({','.join('?' * len(accounts))})" if accounts else "1 = 0")
        params.extend(accounts)
    if since is not None:
        clauses.append(f"{column} >= ?")
        params.append(ts(since))
    if until is not None:
        clauses.append(f"{column} < ?")
        params.append(ts(until))
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


class PresenceTables(TableBase):
    """current + transitions + cycles."""

    _snapshots: dict[str, dict[str, StateKey]]
    _snapshot_versions: dict[str, int]

    def _snapshot(self, account_id: str) -> dict[str, StateKey]:
        snap = self._snapshots.get(account_id)
        if snap is None:
            rows = self._read(
                "SELECT user_id, availability, activity, status_message, out_of_office FROM current"
                " WHERE account_id = ?",
                (account_id,),
            )
            snap = self._snapshots[account_id] = {r[0]: (r[0], r[1], r[2], r[3], bool(r[4])) for r in rows}
        return snap

    def snapshot(self, account_id: str) -> Mapping[str, StateKey]:
        """Read-only view of the last known state per user id (e.g. for agents whose chunk failed)."""
        return MappingProxyType(self._snapshot(account_id))

    def snapshot_version(self, account_id: str) -> int:
        """Grows whenever `apply_presences` wrote a row for the account: the cheap "rewrite presence.csv?"."""
        return self._snapshot_versions.get(account_id, 0)

    def apply_presences(self, account_id: str, presences: Sequence[Presence]) -> list[Change]:
        """Diff a cycle's presences against the snapshot; store what changed in one transaction."""
        snap = self._snapshot(account_id)
        fresh = list(filterfalse(_STALE, presences))
        keys = list(map(_KEY, fresh))
        # C-level passes: old state per user, compared with the new one; keep the presences that differ.
        differs = map(ne, map(snap.get, map(_FIRST, keys)), keys)
        candidates = list(compress(zip(fresh, keys, strict=True), differs))
        if not candidates:
            return []
        rows: list[tuple[object, ...]] = []
        changes: list[Change] = []
        updates: dict[str, StateKey] = {}
        for p, key in candidates:
            uid = key[0]
            if not uid or uid in updates:
                continue
            updates[uid] = key
            when = ts(p.observed_at)
            rows.append((account_id, uid, p.upn, key[1], key[2], key[3], int(key[4]), p.sequence_number, when))
            old = snap.get(uid)
            old_av, old_act = (old[1], old[2]) if old is not None else ("", "")
            if old is None or old_av != key[1] or old_act != key[2]:
                changes.append(
                    Change(account_id, p.upn, uid, old_av, old_act, key[1], key[2], p.observed_at)
                )
        if not rows:
            return []
        with self._tx("saving presences", account_id) as c:
            c.executemany(_UPSERT_CURRENT, rows)
            if changes:
                c.executemany(
                    _INSERT_TRANSITION,
                    [
                        (ch.account_id, ch.upn, ch.user_id, ch.from_availability, ch.from_activity,
                         ch.to_availability, ch.to_activity, ts(ch.changed_at))
                        for ch in changes
                    ],
                )
        snap.update(updates)  # only after the commit: a failed write leaves memory and disk in agreement
        self._snapshot_versions[account_id] = self._snapshot_versions.get(account_id, 0) + 1
        return changes

    def record_cycle(self, result: CycleResult) -> None:
        """Keep one row per cycle and account (the figures of the per-cycle INFO line)."""
        values = [getattr(result, c) for c in _CYCLE_COLUMNS]
        values[1] = ts(result.started_at)
        values[13] = int(result.needs_human)
        with self._tx("saving the cycle", result.account_id) as c:
            c.execute(f"INSERT INTO cycles ({','.join(_CYCLE_COLUMNS)}) VALUES ({','.join('?' * 14)})", values)

    def history(self, accounts: Sequence[str] | None = None, since: datetime | None = None,
                until: datetime | None = None) -> Iterator[Change]:
        """Transitions with `since <= changed_at < until`, oldest first (None: unbounded / every account)."""
        where, params = _where(accounts, since, until, "changed_at")
        sql = (
            "SELECT account_id, upn, user_id, from_availability, from_activity, to_availability, to_activity,"
            f" changed_at FROM transitions{where} ORDER BY changed_at, {self._db.seq}"
        )
        for r in self._iter(sql, params):
            yield Change(r[0], r[1], r[2], r[3], r[4], r[5], r[6], dt(r[7]))

    def snapshots(self, accounts: Sequence[str] | None = None, at: datetime | None = None) -> Iterator[Change]:
        """Each user's state as of `at` (exclusive; None: latest): the transition that led into it."""
        where, params = _where(accounts, None, at, "changed_at")
        cols = "account_id, upn, user_id, from_availability, from_activity, to_availability, to_activity"
        if self._db.dialect == "postgresql":
            sql = (f"SELECT {cols}, changed_at FROM (SELECT DISTINCT ON (account_id, user_id) {cols}, changed_at"
                   f" FROM transitions{where} ORDER BY account_id, user_id, changed_at DESC, seq DESC) latest"
                   " ORDER BY account_id, upn")
        else:  # SQLite takes the bare columns from the row holding MAX(); the (account, user, time) index serves it
            sql = (f"SELECT {cols}, MAX(changed_at) FROM transitions{where} GROUP BY account_id, user_id"
                   " ORDER BY account_id, upn")
        for r in self._iter(sql, params):
            yield Change(r[0], r[1], r[2], r[3], r[4], r[5], r[6], dt(r[7]))

    def cycles(self, accounts: Sequence[str] | None = None, since: datetime | None = None,
               until: datetime | None = None) -> Iterator[CycleResult]:
        """Recorded cycles with `since <= started_at < until`, oldest first."""
        where, params = _where(accounts, since, until, "started_at")
        sql = f"SELECT {','.join(_CYCLE_COLUMNS)} FROM cycles{where} ORDER BY started_at, {self._db.seq}"
        for r in self._iter(sql, params):
            yield CycleResult(
                r[0], dt(r[1]), agents=r[2], valid=r[3], resolved=r[4], presences=r[5], changes=r[6],
                requests=r[7], throttled=r[8], stale=r[9], written_back=r[10], duration_s=r[11], error=r[12],
                needs_human=bool(r[13]),
            )
