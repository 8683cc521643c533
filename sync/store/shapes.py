"""Request shapes a tenant refused, per account (see ``graph/shapes.py``): kept so that a restart starts on the
shape that worked, and probes the faster one again only once the refusal is a day old."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sync.store._db import dt, ts
from sync.store.backend import TableBase

__all__ = ["Refusal", "ShapeTables"]


@dataclass(frozen=True)
class Refusal:
    ladder: str
    shape: str
    refused_at: datetime
    reason: str


class ShapeTables(TableBase):
    """refused_shapes."""

    def load_refusals(self, account_id: str) -> list[Refusal]:
        rows = self._read("SELECT ladder, shape, refused_at, reason FROM refused_shapes WHERE account_id = ?"
                          " ORDER BY ladder, refused_at", (account_id,))
        return [Refusal(str(r[0]), str(r[1]), dt(str(r[2])), str(r[3])) for r in rows]

    def save_refusal(self, account_id: str, refusal: Refusal) -> None:
        with self._tx("remembering a refused request shape", account_id) as c:
            c.execute("INSERT INTO refused_shapes (account_id, ladder, shape, refused_at, reason) VALUES (?,?,?,?,?)"
                      " ON CONFLICT (account_id, ladder, shape) DO UPDATE SET refused_at = excluded.refused_at,"
                      " reason = excluded.reason",
                      (account_id, refusal.ladder, refusal.shape, ts(refusal.refused_at), refusal.reason[:500]))

    def forget_refusals(self, account_id: str, ladder: str | None = None) -> None:
        """Drop the account's remembered refusals (of one ladder), e.g. once they are a day old."""
        with self._tx("forgetting refused request shapes", account_id) as c:
            if ladder is None:
                c.execute("DELETE FROM refused_shapes WHERE account_id = ?", (account_id,))
            else:
                c.execute("DELETE FROM refused_shapes WHERE account_id = ? AND ladder = ?", (account_id, ladder))
