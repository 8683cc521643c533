"""Per-item state of the Agent list: the latest validation verdicts, what was last written back, and since when
each item has been waiting to be written (``pending_since``).

All are held in memory per account (loaded once) so that an unchanged roster costs a dict comparison,
and only items whose values changed are written, to SQLite here and to SharePoint by the caller.
``pending_since`` orders the write-back queue (longest-wrong first) and measures the Agent-list lag: the
time from a change being known to its value being in the list.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from datetime import UTC, datetime
from itertools import chain, compress
from operator import attrgetter, is_, itemgetter, ne

from sync.models import ValidationRow
from sync.store._db import dt, ts
from sync.store.backend import TableBase

__all__ = ["ItemTables"]

# Everything of a ValidationRow, as a tuple: compared in C, not through the dataclass's __eq__.
_VKEY = attrgetter(
    "item_id", "raw_upn", "normalized_upn", "status", "codes", "severity", "suggestion", "user_id", "candidates",
    "detail",
)
_ITEM = attrgetter("item_id")
_VTuple = tuple[int, str | None, str, str, tuple[str, ...], str, str, str | None, str, str]

_UPSERT_VALIDATION = (
    "INSERT INTO validation (account_id, item_id, raw_upn, normalized_upn, status, codes, severity,"
    " suggestion, user_id, candidates, detail, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
    " ON CONFLICT (account_id, item_id) DO UPDATE SET raw_upn=excluded.raw_upn,"
    " normalized_upn=excluded.normalized_upn, status=excluded.status, codes=excluded.codes,"
    " severity=excluded.severity, suggestion=excluded.suggestion, user_id=excluded.user_id,"
    " candidates=excluded.candidates, detail=excluded.detail,"
    " updated_at=excluded.updated_at"
)
_INSERT_RUN = "INSERT INTO validation_runs (account_id, at, items, ok, fixed, invalid, codes) VALUES (?,?,?,?,?,?,?)"
_STATUS = itemgetter(3)
_CODES = itemgetter(4)


def _finding_counts(verdicts: Collection[_VTuple]) -> tuple[int, int, int, int, str]:
    """(items, ok, fixed, invalid, codes as JSON) of a whole roster's verdicts: one row of validation_runs."""
    status = Counter(map(_STATUS, verdicts))
    codes = Counter(chain.from_iterable(map(_CODES, verdicts)))
    return (len(verdicts), status["ok"], status["fixed"], status["invalid"],
            json.dumps(dict(sorted(codes.items())), separators=(",", ":")))


_UPSERT_WRITEBACK = (
    "INSERT INTO writeback (account_id, item_id, fields, written_at) VALUES (?,?,?,?)"
    " ON CONFLICT (account_id, item_id) DO UPDATE SET fields=excluded.fields, written_at=excluded.written_at"
)


class ItemTables(TableBase):
    """validation + writeback."""

    _validation: dict[str, dict[int, _VTuple]]
    _validation_rows: dict[str, list[ValidationRow]]
    _written: dict[str, dict[int, dict[str, str]]]
    _pending_since: dict[str, dict[int, datetime]]

    def _validation_of(self, account_id: str) -> dict[int, _VTuple]:
        cur = self._validation.get(account_id)
        if cur is None:
            rows = self._read(
                "SELECT item_id, raw_upn, normalized_upn, status, codes, severity, suggestion, user_id,"
                " candidates, detail"
                " FROM validation WHERE account_id = ?",
                (account_id,),
            )
            cur = self._validation[account_id] = {
                r[0]: (r[0], r[1], r[2], r[3], tuple(r[4].split(";")) if r[4] else (), r[5], r[6], r[7], r[8], r[9])
                for r in rows
            }
        return cur

    def save_validation(self, account_id: str, rows: Iterable[ValidationRow],
                        updated_at: datetime | None = None) -> int:
        """Store the verdicts of the account's whole roster: changed rows are written, vanished items deleted.

        Returns how many rows were written or deleted (0 when the roster's verdicts did not change).
        """
        rows = list(rows)
        last = self._validation_rows.get(account_id)
        if last is not None and len(last) == len(rows) and all(map(is_, rows, last)):
            return 0  # the very same (frozen) verdict objects as last time: nothing can have changed
        cur = self._validation_of(account_id)
        new: dict[int, _VTuple] = dict(zip(map(_ITEM, rows), map(_VKEY, rows), strict=True))
        if new == cur:
            self._validation_rows[account_id] = rows
            return 0
        changed = list(compress(new.values(), map(ne, map(cur.get, new.keys()), new.values())))
        gone = [i for i in cur if i not in new]
        when = ts(updated_at or datetime.now(UTC))
        with self._tx("saving validation results", account_id) as c:
            c.executemany(
                _UPSERT_VALIDATION,
                [(account_id, v[0], v[1], v[2], v[3], ";".join(v[4]), v[5], v[6], v[7], v[8], v[9], when)
                 for v in changed],
            )
            c.executemany("DELETE FROM validation WHERE account_id = ? AND item_id = ?",
                          [(account_id, i) for i in gone])
            c.execute(_INSERT_RUN, (account_id, when, *_finding_counts(new.values())))
        self._validation[account_id] = new
        self._validation_rows[account_id] = rows
        return len(changed) + len(gone)

    def load_validation(self, account_id: str) -> list[ValidationRow]:
        """The latest verdicts of the account, by item id."""
        return [ValidationRow(*v) for _, v in sorted(self._validation_of(account_id).items())]

    def _written_of(self, account_id: str) -> dict[int, dict[str, str]]:
        cur = self._written.get(account_id)
        if cur is None:
            rows = self._read("SELECT item_id, fields FROM writeback WHERE account_id = ?", (account_id,))
            cur = self._written[account_id] = {r[0]: json.loads(r[1]) for r in rows}
        return cur

    def writeback_pending(self, account_id: str,
                          desired: Mapping[int, Mapping[str, str]]) -> dict[int, Mapping[str, str]]:
        """The items whose desired SharePoint values differ from what was last written (the caller's own
        mappings: not copied, as a first fill holds 30,000 of them). A column ``desired`` leaves out keeps the
        value last written (a stale agent's presence columns): it does not make the item pending."""
        last = self._written_of(account_id)
        get = last.get

        def differs(item: int, fields: Mapping[str, str]) -> bool:
            prev = get(item)
            if prev is None:
                return True
            if prev == fields:
                return False
            return len(fields) >= len(prev) or any(prev.get(k) != v for k, v in fields.items())
        return {item: fields for item, fields in desired.items() if differs(item, fields)}

    def _since_of(self, account_id: str) -> dict[int, datetime]:
        cur = self._pending_since.get(account_id)
        if cur is None:
            rows = self._read("SELECT item_id, since FROM writeback_pending WHERE account_id = ?", (account_id,))
            cur = self._pending_since[account_id] = {r[0]: dt(r[1]) for r in rows}
        return cur

    def writeback_queue(self, account_id: str, desired: Mapping[int, Mapping[str, str]],
                        now: datetime) -> list[tuple[int, Mapping[str, str], datetime]]:
        """The pending items (as `writeback_pending`) with since when each has been pending, longest-wrong first.

        Items newly pending are recorded as pending since ``now``; items no longer pending (written, back to
        the written values, or gone from ``desired``) are forgotten. Ordered by pending_since, then item id.
        """
        pending = self.writeback_pending(account_id, desired)
        since = self._since_of(account_id)
        now = _utc(now)
        new = [item for item in pending if item not in since]
        gone = [item for item in since if item not in pending]
        if new or gone:
            when = ts(now)
            with self._tx("saving write-back queue", account_id) as c:
                c.executemany("INSERT INTO writeback_pending (account_id, item_id, since) VALUES (?,?,?)"
                              " ON CONFLICT (account_id, item_id) DO UPDATE SET since = excluded.since",
                              [(account_id, item, when) for item in new])
                c.executemany("DELETE FROM writeback_pending WHERE account_id = ? AND item_id = ?",
                              [(account_id, item) for item in gone])
            for item in gone:
                del since[item]
            since.update(dict.fromkeys(new, now))
        return sorted(((item, fields, since[item]) for item, fields in pending.items()),
                      key=lambda t: (t[2], t[0]))

    def mark_written(self, account_id: str, items: Mapping[int, Mapping[str, str]],
                     written_at: datetime | None = None) -> list[float]:
        """Record values SharePoint accepted, so the next `writeback_pending` skips them.

        Returns the Agent-list lag of each marked item that `writeback_queue` had seen pending: seconds from
        its pending_since to ``written_at`` (in item order), and forgets its pending_since.
        """
        if not items:
            return []
        written = _utc(written_at or datetime.now(UTC))
        when = ts(written)
        last = self._written_of(account_id)
        since = self._since_of(account_id)
        copies = {item: {**last.get(item, {}), **fields} for item, fields in items.items()}  # columns left out keep
        waited = sorted(item for item in copies if item in since)
        with self._tx("saving write-back state", account_id) as c:
            c.executemany(
                _UPSERT_WRITEBACK,
                [(account_id, item, json.dumps(f, sort_keys=True), when) for item, f in copies.items()],
            )
            c.executemany("DELETE FROM writeback_pending WHERE account_id = ? AND item_id = ?",
                          [(account_id, item) for item in waited])
        last.update(copies)
        return [max(0.0, (written - since.pop(item)).total_seconds()) for item in waited]

    def reset_writeback(self, account_id: str) -> None:
        """Forget what was written (e.g. the list was restored): the next round rewrites every item."""
        with self._tx("resetting write-back state", account_id) as c:
            c.execute("DELETE FROM writeback WHERE account_id = ?", (account_id,))
        self._written.pop(account_id, None)


def _utc(value: datetime) -> datetime:
    """An aware UTC datetime (naive ones are taken as UTC, as `ts` does)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
